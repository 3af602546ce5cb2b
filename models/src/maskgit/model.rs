//! The masked-token transformer (Show-o's image branch, scaled to the world): one bidirectional
//! transformer over `[prompt tokens][image tokens]` that predicts every masked image token.

use burn::module::Param;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Architecture hyper-parameters, saved beside the weights and checked when they load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskGitConfig {
    /// Prompt tokens (world tokenizer, padded).
    pub text_len: usize,
    /// Prompt vocabulary.
    pub text_vocab: usize,
    /// Image tokens (token grid side²).
    pub image_tokens: usize,
    /// Image codes; the mask token is `codebook`.
    pub codebook: usize,
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    pub d_ff: usize,
}

impl Default for MaskGitConfig {
    fn default() -> Self {
        MaskGitConfig {
            text_len: world::tokenizer::MAX_LEN,
            text_vocab: world::tokenizer::vocab_size(),
            image_tokens: 64,
            codebook: 512,
            d_model: 128,
            heads: 4,
            layers: 4,
            d_ff: 512,
        }
    }
}

impl MaskGitConfig {
    pub fn validate(&self) -> Result<(), String> {
        let side = (self.image_tokens as f64).sqrt() as usize;
        if side * side != self.image_tokens || side == 0 {
            return Err(format!(
                "net.image_tokens ({}) must be a square",
                self.image_tokens
            ));
        }
        if self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "net.d_model ({}) must be a multiple of net.heads ({})",
                self.d_model, self.heads
            ));
        }
        if self.layers == 0 || self.d_ff == 0 || self.codebook < 2 || self.text_len < 2 {
            return Err("net.layers, net.d_ff ≥ 1, net.codebook ≥ 2, net.text_len ≥ 2".into());
        }
        Ok(())
    }

    /// The id of the mask token in the image vocabulary.
    pub fn mask_id(&self) -> usize {
        self.codebook
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> MaskGit<B> {
        self.init_family(false, device)
    }

    /// The same network for either family: bidirectional (masked-token) or causal
    /// (autoregressive, `models::ar`). The extra image id is the mask token for the first and
    /// the begin-of-image token for the second.
    pub fn init_family<B: Backend>(&self, causal: bool, device: &B::Device) -> MaskGit<B> {
        let len = self.text_len + self.image_tokens;
        MaskGit {
            text_emb: EmbeddingConfig::new(self.text_vocab, self.d_model).init(device),
            image_emb: EmbeddingConfig::new(self.codebook + 1, self.d_model).init(device),
            pos: Param::from_tensor(Tensor::random(
                [len, self.d_model],
                burn::tensor::Distribution::Normal(0.0, 0.02),
                device,
            )),
            encoder: TransformerEncoderConfig::new(
                self.d_model,
                self.d_ff,
                self.heads,
                self.layers,
            )
            .with_norm_first(true)
            .with_dropout(0.0)
            .init(device),
            norm: LayerNormConfig::new(self.d_model).init(device),
            head: LinearConfig::new(self.d_model, self.codebook).init(device),
            text_len: self.text_len,
            causal,
        }
    }

    /// `init` plus one forward pass, so that every parameter is drawn now, under the seed.
    pub fn init_materialized<B: Backend>(&self, device: &B::Device) -> MaskGit<B> {
        self.init_materialized_family(false, device)
    }

    /// [`Self::init_family`] plus one forward pass (every parameter drawn now, under the seed).
    pub fn init_materialized_family<B: Backend>(
        &self,
        causal: bool,
        device: &B::Device,
    ) -> MaskGit<B> {
        let net = self.init_family::<B>(causal, device);
        let _ = net.forward(
            Tensor::zeros([1, self.text_len], device),
            Tensor::zeros([1, self.image_tokens], device),
        );
        net
    }
}

#[derive(Module, Debug)]
pub struct MaskGit<B: Backend> {
    pub(crate) text_emb: Embedding<B>,
    pub(crate) image_emb: Embedding<B>,
    pub(crate) pos: Param<Tensor<B, 2>>,
    pub(crate) encoder: TransformerEncoder<B>,
    pub(crate) norm: LayerNorm<B>,
    pub(crate) head: Linear<B>,
    pub(crate) text_len: usize,
    /// Causal attention (the autoregressive family); image sequences may then be shorter than
    /// the grid.
    pub(crate) causal: bool,
}

impl<B: Backend> MaskGit<B> {
    /// # Shapes
    /// - `text`: `[b, text_len]` prompt token ids
    /// - `image`: `[b, image_tokens]` code ids, `codebook` where masked
    /// - returns `[b, image_tokens, codebook]` logits
    pub fn forward(&self, text: Tensor<B, 2, Int>, image: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, n] = image.dims();
        let x = self.embed_with(self.text_emb.forward(text), image);
        let [_, len, d] = x.dims();
        let mut input = TransformerEncoderInput::new(x);
        if self.causal {
            input = input.mask_attn(generate_autoregressive_mask::<B>(
                b,
                len,
                &self.pos.device(),
            ));
        }
        let h = self.encoder.forward(input);
        let h = h.slice([0..b, self.text_len..self.text_len + n, 0..d]);
        self.head.forward(self.norm.forward(h))
    }

    /// `[text][image]` embedded with positions, the text already embedded (the autoregressive
    /// decoder embeds the prompt once per step).
    pub(crate) fn embed_with(
        &self,
        text_emb: Tensor<B, 3>,
        image: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let x = Tensor::cat(vec![text_emb, self.image_emb.forward(image)], 1);
        let [b, len, d] = x.dims();
        x + self
            .pos
            .val()
            .narrow(0, 0, len)
            .reshape([1, len, d])
            .expand([b, len, d])
    }

    /// Log-probabilities of `targets` at the positions where `masked` is 1, summed per sample:
    /// the sequence score DPO compares (the model sees `image` with those positions masked).
    ///
    /// # Shapes
    /// - `text` `[b, text_len]`, `image` `[b, n]` (masked input), `targets` `[b, n]`,
    ///   `masked` `[b, n]` (1.0 where scored) → `[b]`
    pub fn masked_log_prob(
        &self,
        text: Tensor<B, 2, Int>,
        image: Tensor<B, 2, Int>,
        targets: Tensor<B, 2, Int>,
        masked: Tensor<B, 2>,
    ) -> Tensor<B, 1> {
        let [b, n] = targets.dims();
        let logp = log_softmax(self.forward(text, image), 2);
        let picked = logp.gather(2, targets.reshape([b, n, 1])).reshape([b, n]);
        (picked * masked).sum_dim(1).reshape([b])
    }
}
