//! The judge network: one architecture for every question (the paper uses one multimodal LLM
//! for ORM, PRM and PARM). An image encoder and a question encoder (task token + prompt tokens)
//! are fused by feature-wise modulation (FiLM) at 8×8; a pooled head gives the logit of "yes" and
//! a spatial head gives, per cell, the logit that the object the question is about is centred
//! there (reflection counts and localises with it).

use crate::detector::model::{DetectorNet, DetectorNetConfig, HEAT};
use crate::vq::model::{conv, space_to_depth};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

/// Task tokens are appended after the prompt vocabulary.
pub const TASKS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeNetConfig {
    pub image_size: usize,
    pub text_len: usize,
    pub text_vocab: usize,
    /// Channels at 16×16.
    pub c1: usize,
    /// Channels at 8×8 (and the question vector's width).
    pub c2: usize,
    /// Residual blocks at 8×8, each followed by a FiLM modulation.
    pub blocks: usize,
    /// Transformer layers of the question encoder.
    pub text_layers: usize,
    /// A frozen detector whose 16×16 head features and class/box/colour maps are concatenated
    /// to the image features — the paper's judge also starts from a pretrained vision encoder.
    /// Its weights are stored inside the judge's checkpoint.
    pub backbone: Option<DetectorNetConfig>,
}

impl Default for JudgeNetConfig {
    fn default() -> Self {
        JudgeNetConfig {
            image_size: 64,
            text_len: world::words::MAX_LEN,
            text_vocab: world::words::vocab_size(),
            c1: 48,
            c2: 96,
            blocks: 3,
            text_layers: 1,
            backbone: None,
        }
    }
}

#[derive(Module, Debug)]
pub struct FilmBlock<B: Backend> {
    conv: Conv2d<B>,
    film: Linear<B>,
}

impl<B: Backend> FilmBlock<B> {
    /// `x + relu(conv(x)·(1+γ(q)) + β(q))`.
    fn forward(&self, x: Tensor<B, 4>, q: Tensor<B, 2>) -> Tensor<B, 4> {
        let [b, c, _, _] = x.dims();
        let gb = self.film.forward(q); // [b, 2c]
        let gamma = gb.clone().slice([0..b, 0..c]).reshape([b, c, 1, 1]);
        let beta = gb.slice([0..b, c..2 * c]).reshape([b, c, 1, 1]);
        let h = self.conv.forward(x.clone());
        x + relu(h.clone() + h * gamma + beta)
    }
}

#[derive(Module, Debug)]
pub struct JudgeNet<B: Backend> {
    stem: Conv2d<B>,
    pub backbone: Option<DetectorNet<B>>,
    down: Conv2d<B>,
    blocks: Vec<FilmBlock<B>>,
    tokens: Embedding<B>,
    pos: Param<Tensor<B, 2>>,
    text: TransformerEncoder<B>,
    yes: Linear<B>,
    where_: Conv2d<B>,
}

/// The network's two outputs.
pub struct JudgeOutput<B: Backend> {
    /// `[b]` logits of "yes".
    pub yes: Tensor<B, 1>,
    /// `[b, 8, 8]` logits of "the object in question is centred in this cell".
    pub where_: Tensor<B, 3>,
}

impl JudgeNetConfig {
    pub fn init<B: Backend>(&self, d: &B::Device) -> JudgeNet<B> {
        JudgeNet {
            stem: conv(48, self.c1, 3, 1, d),
            backbone: self.backbone.map(|c| c.init(d)),
            down: conv(self.c1 + self.backbone_channels(), self.c2, 3, 2, d),
            blocks: (0..self.blocks)
                .map(|_| FilmBlock {
                    conv: conv(self.c2, self.c2, 3, 1, d),
                    film: LinearConfig::new(self.c2, 2 * self.c2).init(d),
                })
                .collect(),
            tokens: EmbeddingConfig::new(self.text_vocab + TASKS, self.c2).init(d),
            pos: Param::from_tensor(Tensor::random(
                [self.text_len + 1, self.c2],
                burn::tensor::Distribution::Normal(0.0, 0.02),
                d,
            )),
            text: TransformerEncoderConfig::new(self.c2, 2 * self.c2, 4, self.text_layers)
                .with_norm_first(true)
                .with_dropout(0.0)
                .init(d),
            yes: LinearConfig::new(2 * self.c2, 1).init(d),
            where_: conv(self.c2, 1, 1, 1, d),
        }
    }

    pub fn init_materialized<B: Backend>(&self, d: &B::Device) -> JudgeNet<B> {
        let net = self.init::<B>(d);
        let s = self.image_size;
        let _ = net.forward(
            Tensor::zeros([1, 3, s, s], d),
            Tensor::zeros([1, self.text_len + 1], d),
        );
        net
    }

    /// Channels the backbone adds at 16×16: its head features and its 94 output maps.
    pub fn backbone_channels(&self) -> usize {
        self.backbone
            .map_or(0, |c| c.c2 + crate::detector::model::OUT_CHANNELS)
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(b) = self.backbone {
            if b.image_size != self.image_size || b.grid() != 16 {
                return Err("net.backbone must take 64×64 images to a 16×16 grid".into());
            }
        }
        if self.image_size != 64 || !self.c2.is_multiple_of(4) || self.c1 == 0 || self.blocks == 0 {
            return Err(
                "net.image_size 64, net.c2 a multiple of 4, net.c1 and net.blocks ≥ 1".into(),
            );
        }
        Ok(())
    }
}

impl<B: Backend> JudgeNet<B> {
    /// # Shapes
    /// - `images`: `[b, 3, 64, 64]` in [-1, 1]
    /// - `question`: `[b, 1 + text_len]`: the task token (`text_vocab + task`) then the prompt
    ///   (or clause) tokens
    pub fn forward(&self, images: Tensor<B, 4>, question: Tensor<B, 2, Int>) -> JudgeOutput<B> {
        let mut x = relu(self.stem.forward(space_to_depth(images.clone(), 4))); // [b, c1, 16, 16]
        if let Some(net) = &self.backbone {
            // Frozen: detached, so training never moves it (the detector's normalisation is 2×
            // the [-1, 1] range used here).
            let (f, o) = net.features(images.mul_scalar(2.0));
            let [b, c, g, _] = o.dims();
            let heat = sigmoid(o.clone().slice([0..b, 0..HEAT, 0..g, 0..g]));
            let rest = o.slice([0..b, HEAT..c, 0..g, 0..g]);
            x = Tensor::cat(vec![x, f.detach(), heat.detach(), rest.detach()], 1);
        }
        let mut x = relu(self.down.forward(x)); // [b, c2, 8, 8]
        let e = self.tokens.forward(question);
        let [b, len, c] = e.dims();
        let e = e + self.pos.val().reshape([1, len, c]).expand([b, len, c]);
        let h = self.text.forward(TransformerEncoderInput::new(e));
        let q = h.slice([0..b, 0..1, 0..c]).reshape([b, c]); // the task token's output
        for block in &self.blocks {
            x = block.forward(x, q.clone());
        }
        let where_ = self.where_.forward(x.clone()); // [b, 1, 8, 8]
        let [_, _, g, _] = x.dims();
        let flat = x.reshape([b, c, g * g]);
        let pooled = Tensor::cat(
            vec![
                flat.clone().mean_dim(2).reshape([b, c]),
                flat.max_dim(2).reshape([b, c]),
            ],
            1,
        );
        JudgeOutput {
            yes: self.yes.forward(pooled).reshape([b]),
            where_: where_.reshape([b, g, g]),
        }
    }
}
