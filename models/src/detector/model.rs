//! The detector network: a small CenterNet. A strided CNN maps a 64×64 image to a 16×16 grid;
//! per cell it predicts a heat-map logit for each of the 80 classes (object centre here?), the
//! sub-cell offset and log-size of the box, and the object's colour.
//!
//! Why CenterNet: one peak per object makes counting exact (no anchor duplicates to suppress),
//! the peak's sigmoid is a per-object probability that calibrates well (GenEval thresholds it at
//! 0.3 and 0.9), and it is a handful of convolutions — cheap enough to train on two CPU cores.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Output channels per cell: 80 class logits, 4 box values (dx, dy, log w, log h), 10 colours.
pub const HEAT: usize = harness::vocab::NUM_CLASSES;
pub const BOX: usize = 4;
pub const COLORS: usize = 10;
pub const OUT_CHANNELS: usize = HEAT + BOX + COLORS;

/// Architecture hyper-parameters, saved beside the weights and checked when they load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorNetConfig {
    /// Input side in pixels (square).
    pub image_size: usize,
    /// Channels of the stride-2 stage.
    pub c1: usize,
    /// Channels of the stride-4 stage and the head.
    pub c2: usize,
    /// Residual 3×3 blocks at stride 4 (each widens the receptive field by 8 pixels).
    pub blocks: usize,
}

impl Default for DetectorNetConfig {
    fn default() -> Self {
        DetectorNetConfig {
            image_size: 64,
            c1: 32,
            c2: 64,
            blocks: 3,
        }
    }
}

/// Output stride of the grid.
pub const STRIDE: usize = 4;

/// 3×3 convolution + ReLU. No batch norm: on the CPU backend its training-mode statistics cost
/// more than the convolutions (profiled), and this shallow net trains stably without it.
#[derive(Module, Debug)]
pub struct ConvAct<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> ConvAct<B> {
    pub(crate) fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        ConvAct {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.conv.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct DetectorNet<B: Backend> {
    stem: ConvAct<B>,
    stage1: ConvAct<B>,
    down: ConvAct<B>,
    blocks: Vec<ConvAct<B>>,
    head: ConvAct<B>,
    out: Conv2d<B>,
}

impl DetectorNetConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> DetectorNet<B> {
        let mut out = Conv2dConfig::new([self.c2, OUT_CHANNELS], [1, 1]).init(device);
        // CenterNet's prior: heat-map logits start at -2.19 (p = 0.1) so that the background
        // does not swamp the focal loss in the first steps.
        let mut values = vec![0.0f32; OUT_CHANNELS];
        values[..HEAT].fill(-2.19);
        let init = Tensor::<B, 1>::from_data(TensorData::new(values, [OUT_CHANNELS]), device);
        out.bias = Some(Param::from_tensor(init));
        DetectorNet {
            stem: ConvAct::new(3, self.c1, 2, device),
            stage1: ConvAct::new(self.c1, self.c1, 1, device),
            down: ConvAct::new(self.c1, self.c2, 2, device),
            blocks: (0..self.blocks)
                .map(|_| ConvAct::new(self.c2, self.c2, 1, device))
                .collect(),
            head: ConvAct::new(self.c2, self.c2, 1, device),
            out,
        }
    }

    /// `init`, then one forward pass on a blank image: burn draws parameters lazily on first
    /// use, and training must draw them here, under the seed, not at some later moment.
    pub fn init_materialized<B: Backend>(&self, device: &B::Device) -> DetectorNet<B> {
        let net = self.init::<B>(device);
        let s = self.image_size;
        let _ = net.forward(Tensor::zeros([1, 3, s, s], device));
        net
    }

    pub fn grid(&self) -> usize {
        self.image_size / STRIDE
    }
}

impl<B: Backend> DetectorNet<B> {
    /// # Shapes
    /// - `images`: `[batch, 3, 64, 64]`, normalised (see `detector::data::normalise`)
    /// - returns `[batch, 94, 16, 16]`: 80 heat-map logits, dx, dy, log w, log h (in grid
    ///   cells), 10 colour logits
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.features(images).1
    }

    /// The head's features `[batch, c2, 16, 16]` and the outputs of [`Self::forward`]. The
    /// tokenizer's perceptual loss compares them between an image and its reconstruction.
    pub fn features(&self, images: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let x = self.stem.forward(images); // [b, c1, 32, 32]
        let x = self.stage1.forward(x); // [b, c1, 32, 32]
        let mut x = self.down.forward(x); // [b, c2, 16, 16]
        for block in &self.blocks {
            x = x.clone() + block.forward(x); // residual keeps early localisation
        }
        let x = self.head.forward(x); // [b, c2, 16, 16]
        let out = self.out.forward(x.clone()); // [b, 94, 16, 16]
        (x, out)
    }
}
