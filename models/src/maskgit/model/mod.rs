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
    /// Side g of the square token groups one transformer position holds: 1 is one position per
    /// token (Show-o); 2 makes a 16×16 grid 64 positions of 2×2 codes, embedded as the sum of
    /// their codes' embeddings and predicted by one head of g²·codebook logits. Masks and
    /// re-masking then work on whole groups. The cost of a forward is that of the shorter
    /// sequence, which is what makes the 16×16 tokenizer affordable on two CPU cores.
    #[serde(skip_serializing_if = "is_one")]
    pub group: usize,
    /// How the learned position embeddings start. `normal` (the first generators):
    /// N(0, 0.02), fifty times smaller than the token embeddings (burn's N(0, 1)), so the
    /// network at first barely knows where a token is and must grow that signal before it can
    /// learn that a code predicts its neighbours. `sincos`: text positions 1-D and image
    /// positions 2-D (row, column) sinusoids at the token embeddings' scale, so neighbouring
    /// tokens start with similar, shift-structured positions.
    #[serde(skip_serializing_if = "PosInit::is_normal")]
    pub pos_init: PosInit,
}

/// See [`MaskGitConfig::pos_init`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosInit {
    #[default]
    Normal,
    Sincos,
}

impl PosInit {
    fn is_normal(&self) -> bool {
        *self == PosInit::Normal
    }
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

/// `dims` sinusoid features of position `p` (pairs of sin, cos at geometric frequencies).
fn sincos(p: usize, dims: usize, out: &mut [f32]) {
    for i in 0..dims / 2 {
        let freq = 1.0 / 100f64.powf(2.0 * i as f64 / dims as f64);
        let a = p as f64 * freq;
        out[2 * i] = a.sin() as f32;
        out[2 * i + 1] = a.cos() as f32;
    }
}

/// `[text_len + side², d]` position table: text positions 1-D, image positions (row, column)
/// with half the dimensions each. Scaled by √2 so that a row has about unit variance per
/// dimension, like burn's N(0, 1) token embeddings.
fn sincos_table(text_len: usize, side: usize, d: usize) -> Vec<f32> {
    let mut t = vec![0f32; (text_len + side * side) * d];
    for p in 0..text_len {
        sincos(p, d, &mut t[p * d..(p + 1) * d]);
    }
    for k in 0..side * side {
        let row = &mut t[(text_len + k) * d..(text_len + k + 1) * d];
        let (a, b) = row.split_at_mut(d / 2);
        sincos(k / side, d / 2, a);
        sincos(k % side, d - d / 2, b);
    }
    t.iter_mut().for_each(|v| *v *= std::f32::consts::SQRT_2);
    t
}

impl Default for MaskGitConfig {
    fn default() -> Self {
        MaskGitConfig {
            text_len: world::words::MAX_LEN,
            text_vocab: world::words::vocab_size(),
            image_tokens: 64,
            codebook: 512,
            d_model: 128,
            heads: 4,
            layers: 4,
            d_ff: 512,
            group: 1,
            pos_init: PosInit::Normal,
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
        if self.group == 0 || !side.is_multiple_of(self.group) {
            return Err(format!(
                "net.group ({}) must divide the token grid side ({side})",
                self.group
            ));
        }
        Ok(())
    }

    /// Transformer positions of the image: one per token group.
    pub fn positions(&self) -> usize {
        self.image_tokens / (self.group * self.group)
    }

    /// The group of each token (raster order over the token grid), groups in raster order.
    pub fn group_of(&self) -> Vec<usize> {
        group_of(self.image_tokens, self.group)
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
        let len = self.text_len + self.positions();
        let gg = self.group * self.group;
        MaskGit {
            text_emb: EmbeddingConfig::new(self.text_vocab, self.d_model).init(device),
            // One table per place in a group (ids offset by place·(codebook+1)).
            image_emb: EmbeddingConfig::new(gg * (self.codebook + 1), self.d_model).init(device),
            pos: Param::from_tensor(match self.pos_init {
                PosInit::Normal => Tensor::random(
                    [len, self.d_model],
                    burn::tensor::Distribution::Normal(0.0, 0.02),
                    device,
                ),
                PosInit::Sincos => {
                    let side = (self.positions() as f64).sqrt().round() as usize;
                    let t = sincos_table(self.text_len, side, self.d_model);
                    Tensor::from_data(TensorData::new(t, [len, self.d_model]), device)
                }
            }),
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
            head: LinearConfig::new(self.d_model, gg * self.codebook).init(device),
            text_len: self.text_len,
            causal,
            group: self.group,
            codebook: self.codebook,
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

/// The group of each of `n` raster-ordered tokens of a square grid, for groups of side `g`.
pub fn group_of(n: usize, g: usize) -> Vec<usize> {
    let side = (n as f64).sqrt() as usize;
    let g = g.max(1);
    (0..n)
        .map(|r| (r / side / g) * (side / g) + (r % side) / g)
        .collect()
}

/// Raster token indices in group-major order (each group's tokens row-major): the order in
/// which a grouped network embeds tokens and emits logits.
fn group_major(n: usize, g: usize) -> Vec<usize> {
    let of = group_of(n, g);
    let mut order: Vec<usize> = (0..n).collect();
    // Stable: the tokens of one group keep their raster (row-major) order.
    order.sort_by_key(|&r| of[r]);
    order
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
    /// Token group side (see [`MaskGitConfig::group`]).
    pub(crate) group: usize,
    pub(crate) codebook: usize,
}

/// Logits at chosen rows (see [`MaskGit::row_logits`]).
pub struct RowLogits<'a, B: Backend> {
    net: &'a MaskGit<B>,
    /// `[m, d]` normed hidden states, or `[m, codebook]` logits when `headed`.
    x: Tensor<B, 2>,
    headed: bool,
}

impl<B: Backend> RowLogits<'_, B> {
    /// Logits `[len, codebook]` of rows `start..start + len` of the selection.
    pub fn slice(&self, start: usize, len: usize) -> Tensor<B, 2> {
        let x = self.x.clone().narrow(0, start, len);
        if self.headed {
            x
        } else {
            self.net.head.forward(x)
        }
    }
}

impl<B: Backend> MaskGit<B> {
    /// # Shapes
    /// - `text`: `[b, text_len]` prompt token ids
    /// - `image`: `[b, image_tokens]` code ids, `codebook` where masked
    /// - returns `[b, image_tokens, codebook]` logits
    pub fn forward(&self, text: Tensor<B, 2, Int>, image: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        if self.group > 1 {
            return self.forward_grouped(text, image);
        }
        self.head
            .forward(self.norm.forward(self.hidden(text, image)))
    }

    /// [`Self::forward`]'s logits at chosen rows only, computed slice by slice on demand:
    /// `rows` index the flattened `[b·n]` image positions. Sampling needs only the masked
    /// positions, and the head is over a third of a forward's work, so this skips it where
    /// nothing is drawn; slicing keeps each logits buffer small (a PARM step's masked rows
    /// times 8,192 codes would be hundreds of megabytes at once).
    ///
    /// # Shapes
    /// - `text` `[b, text_len]`, `image` `[b, n]`, `rows` `[m]`
    pub fn row_logits(
        &self,
        text: Tensor<B, 2, Int>,
        image: Tensor<B, 2, Int>,
        rows: Tensor<B, 1, Int>,
    ) -> RowLogits<'_, B> {
        let [b, n] = image.dims();
        if self.group > 1 {
            // A grouped head emits a whole group's logits per position: no per-row shortcut.
            let k = self.codebook;
            let logits = self.forward_grouped(text, image).reshape([b * n, k]);
            return RowLogits {
                net: self,
                x: logits.select(0, rows),
                headed: true,
            };
        }
        let h = self.hidden(text, image);
        let d = h.dims()[2];
        RowLogits {
            net: self,
            x: self.norm.forward(h.reshape([b * n, d]).select(0, rows)),
            headed: false,
        }
    }

    /// The encoder's output at the image positions, `[b, n, d]` (ungrouped networks).
    fn hidden(&self, text: Tensor<B, 2, Int>, image: Tensor<B, 2, Int>) -> Tensor<B, 3> {
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
        h.slice([0..b, self.text_len..self.text_len + n, 0..d])
    }

    /// [`Self::forward`] for token groups: tokens are gathered into group-major order, each
    /// group's codes embedded (one table per place) and summed into one position; the head's
    /// `g²·codebook` outputs per position are scattered back to raster order.
    fn forward_grouped(&self, text: Tensor<B, 2, Int>, image: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, n] = image.dims();
        let gg = self.group * self.group;
        let device = self.pos.device();
        let major = group_major(n, self.group);
        let order = Tensor::<B, 1, Int>::from_data(
            TensorData::new(major.iter().map(|&r| r as i64).collect(), [n]),
            &device,
        );
        let offsets: Vec<i64> = (0..n)
            .map(|i| ((i % gg) * (self.codebook + 1)) as i64)
            .collect();
        let offsets =
            Tensor::<B, 1, Int>::from_data(TensorData::new(offsets, [n]), &device).reshape([1, n]);
        let ids = image.select(1, order) + offsets.expand([b, n]);
        let e = self.image_emb.forward(ids);
        let d = e.dims()[2];
        let p = n / gg;
        let e = e.reshape([b, p, gg, d]).sum_dim(2).reshape([b, p, d]);
        let x = self.with_positions(Tensor::cat(vec![self.text_emb.forward(text), e], 1));
        let h = self.encoder.forward(TransformerEncoderInput::new(x));
        let h = h.slice([0..b, self.text_len..self.text_len + p, 0..d]);
        let logits = self
            .head
            .forward(self.norm.forward(h))
            .reshape([b, n, self.codebook]);
        // Back to raster order: slot j holds raster token order[j], so scatter by the inverse.
        let mut inverse = vec![0i64; n];
        for (j, &r) in major.iter().enumerate() {
            inverse[r] = j as i64;
        }
        let inverse = Tensor::<B, 1, Int>::from_data(TensorData::new(inverse, [n]), &device);
        logits.select(1, inverse)
    }

    /// `[text][image]` embedded with positions, the text already embedded (the autoregressive
    /// decoder embeds the prompt once per step).
    pub(crate) fn embed_with(
        &self,
        text_emb: Tensor<B, 3>,
        image: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        self.with_positions(Tensor::cat(
            vec![text_emb, self.image_emb.forward(image)],
            1,
        ))
    }

    /// Adds the position embeddings to an embedded `[b, len, d]` sequence.
    fn with_positions(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
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

#[cfg(test)]
mod tests;
