//! The image tokenizer: a VQ autoencoder mapping a 64×64 render to an 8×8 (or 16×16) grid of
//! codes.
//!
//! Why this shape: the generator, its judges and the decoder run at every step of every candidate
//! (PARM judges decoded step images), so the decoder must be cheap on two CPU cores. Pixels are
//! moved into channels (space-to-depth) instead of being convolved at full resolution; the only
//! convolutions run at 16×16 and 8×8. Codes are l2-normalised and looked up by cosine similarity
//! (ViT-VQGAN's trick), which with dead-code restarts keeps the codebook in use.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Architecture hyper-parameters, saved beside the weights and checked when they load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VqNetConfig {
    /// Input side in pixels (square); must be 8 × `grid` (8×8-pixel tokens) or 4 × `grid`
    /// (4×4-pixel tokens).
    pub image_size: usize,
    /// Token grid side.
    pub grid: usize,
    /// Channels at 16×16.
    pub c1: usize,
    /// Channels at 8×8.
    pub c2: usize,
    /// Residual blocks at 8×8 in the encoder and in the decoder.
    pub blocks: usize,
    /// Residual blocks at 16×16 in the decoder, where glyph outlines and legs are drawn (0 in
    /// the first tokenizer).
    pub dec_blocks16: usize,
    /// Dimension of a code vector.
    pub code_dim: usize,
    /// Number of codes.
    pub codebook: usize,
    /// Encode each token from its own pixels only (1×1 convolutions over space-to-depth
    /// patches): identical patches then get identical codes wherever they stand, so a flat
    /// background is one code and a canonical glyph's tokens depend on its class and colour
    /// alone. The convolutional encoder's receptive field spans the image, which lets every
    /// background token carry a different, interchangeable code (docs/tokenizer.md).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub local_encoder: bool,
}

impl Default for VqNetConfig {
    fn default() -> Self {
        VqNetConfig {
            image_size: 64,
            grid: 8,
            c1: 64,
            c2: 128,
            blocks: 2,
            dec_blocks16: 0,
            code_dim: 16,
            codebook: 512,
            local_encoder: false,
        }
    }
}

impl VqNetConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.grid == 0 || (self.image_size != 8 * self.grid && self.image_size != 4 * self.grid)
        {
            return Err(format!(
                "net.image_size ({}) must be 8 × or 4 × net.grid ({})",
                self.image_size, self.grid
            ));
        }
        if self.codebook < 2 || self.code_dim == 0 || self.c1 == 0 || self.c2 == 0 {
            return Err("net.codebook ≥ 2 and positive net.code_dim, net.c1, net.c2".into());
        }
        Ok(())
    }

    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// Pixels per token side (8 or 4). With 4 the 16×16 stage is the token grid itself.
    pub fn patch(&self) -> usize {
        self.image_size / self.grid.max(1)
    }
}

/// A k×k convolution with "same" padding.
pub(crate) fn conv<B: Backend>(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    d: &B::Device,
) -> Conv2d<B> {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(d)
}

/// `x + conv(relu(conv(relu(x))))`.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    a: Conv2d<B>,
    b: Conv2d<B>,
}

impl<B: Backend> ResBlock<B> {
    fn new(c: usize, d: &B::Device) -> Self {
        Self::with_kernel(c, 3, d)
    }
    fn with_kernel(c: usize, k: usize, d: &B::Device) -> Self {
        ResBlock {
            a: conv(c, c, k, 1, d),
            b: conv(c, c, k, 1, d),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        x.clone() + self.b.forward(relu(self.a.forward(relu(x))))
    }
}

/// `[b, c, h·r, w·r]` → `[b, c·r·r, h, w]`.
pub fn space_to_depth<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / r, r, w / r, r])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * r * r, h / r, w / r])
}

/// `[b, c·r·r, h, w]` → `[b, c, h·r, w·r]` (inverse of [`space_to_depth`]).
pub fn depth_to_space<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let [b, crr, h, w] = x.dims();
    let c = crr / (r * r);
    x.reshape([b, c, r, r, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([b, c, h * r, w * r])
}

#[derive(Module, Debug)]
pub struct VqNet<B: Backend> {
    enc_in: Conv2d<B>,
    enc_down: Conv2d<B>,
    enc_blocks: Vec<ResBlock<B>>,
    enc_out: Conv2d<B>,
    /// `[codebook, code_dim]`, used l2-normalised.
    pub codebook: Param<Tensor<B, 2>>,
    dec_in: Conv2d<B>,
    dec_blocks: Vec<ResBlock<B>>,
    dec_up: Conv2d<B>,
    dec_fine: Vec<ResBlock<B>>,
    dec_mid: Conv2d<B>,
    dec_out: Conv2d<B>,
    /// Pixels per token side (8: the decoder upsamples 8×8 → 16×16 first; 4: it starts there).
    patch: usize,
    /// See [`VqNetConfig::local_encoder`].
    local: bool,
}

/// What quantisation returns: the straight-through code vectors, the indices and the two VQ
/// losses (commitment: encoder → code; codebook: code → encoder).
pub struct Quantized<B: Backend> {
    pub z_q: Tensor<B, 4>,
    pub indices: Tensor<B, 2, Int>,
    pub commit: Tensor<B, 1>,
    pub codebook: Tensor<B, 1>,
    /// The normalised encoder outputs `[n, code_dim]` (dead-code restarts draw from them).
    pub z_flat: Tensor<B, 2>,
}

impl VqNetConfig {
    pub fn init<B: Backend>(&self, d: &B::Device) -> VqNet<B> {
        let codebook = Tensor::<B, 2>::random(
            [self.codebook, self.code_dim],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            d,
        );
        let local = self.local_encoder;
        let p = self.patch();
        VqNet {
            enc_in: if local {
                conv(3 * p * p, self.c1, 1, 1, d)
            } else {
                conv(48, self.c1, 3, 1, d)
            },
            enc_down: match (local, p) {
                (true, _) => conv(self.c1, self.c2, 1, 1, d),
                (false, 8) => conv(self.c1, self.c2, 3, 2, d),
                (false, _) => conv(self.c1, self.c2, 3, 1, d),
            },
            enc_blocks: (0..self.blocks)
                .map(|_| ResBlock::with_kernel(self.c2, if local { 1 } else { 3 }, d))
                .collect(),
            enc_out: conv(self.c2, self.code_dim, 1, 1, d),
            codebook: Param::from_tensor(codebook),
            dec_in: conv(self.code_dim, self.c2, 1, 1, d),
            dec_blocks: (0..self.blocks)
                .map(|_| ResBlock::new(self.c2, d))
                .collect(),
            dec_up: conv(
                self.c2,
                if self.patch() == 8 {
                    4 * self.c1
                } else {
                    self.c1
                },
                1,
                1,
                d,
            ),
            dec_fine: (0..self.dec_blocks16)
                .map(|_| ResBlock::new(self.c1, d))
                .collect(),
            dec_mid: conv(self.c1, self.c1, 3, 1, d),
            dec_out: conv(self.c1, 48, 3, 1, d),
            patch: p,
            local,
        }
    }

    /// `init` plus one forward pass, so that every parameter is drawn now, under the seed.
    pub fn init_materialized<B: Backend>(&self, d: &B::Device) -> VqNet<B> {
        let net = self.init::<B>(d);
        let s = self.image_size;
        let q = net.quantize(net.encode(Tensor::zeros([1, 3, s, s], d)));
        let _ = net.decode(q.z_q);
        net
    }
}

fn l2_normalise<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .add_scalar(1e-8)
        .sqrt();
    x / norm
}

impl<B: Backend> VqNet<B> {
    /// # Shapes
    /// - `images`: `[b, 3, 64, 64]` in [-1, 1]
    /// - returns `[b, code_dim, 8, 8]` (not yet normalised)
    pub fn encode(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.local {
            // Every layer is 1×1 over one token's pixels.
            let x = space_to_depth(images, self.patch); // [b, 3·p·p, g, g]
            let mut x = self.enc_down.forward(relu(self.enc_in.forward(x)));
            for block in &self.enc_blocks {
                x = block.forward(x);
            }
            return self.enc_out.forward(relu(x));
        }
        let x = space_to_depth(images, 4); // [b, 48, 16, 16]
        let x = relu(self.enc_in.forward(x));
        let mut x = self.enc_down.forward(x); // [b, c2, 8, 8]
        for block in &self.enc_blocks {
            x = block.forward(x);
        }
        self.enc_out.forward(relu(x))
    }

    /// The normalised codebook `[codebook, code_dim]`.
    pub fn codes(&self) -> Tensor<B, 2> {
        l2_normalise(self.codebook.val())
    }

    /// Nearest code (cosine) per grid cell, with straight-through gradients.
    pub fn quantize(&self, z: Tensor<B, 4>) -> Quantized<B> {
        let [b, d, g, _] = z.dims();
        let flat = l2_normalise(z.permute([0, 2, 3, 1]).reshape([b * g * g, d]));
        let codes = self.codes();
        let sims = flat.clone().matmul(codes.clone().transpose()); // [n, K]
        let idx = sims.argmax(1).reshape([b * g * g]);
        let q = codes.select(0, idx.clone()); // [n, d]
        let commit = (flat.clone() - q.clone().detach()).powf_scalar(2.0).mean();
        let codebook = (q.clone() - flat.clone().detach()).powf_scalar(2.0).mean();
        let st = flat.clone() + (q - flat.clone()).detach();
        Quantized {
            z_q: st.reshape([b, g, g, d]).permute([0, 3, 1, 2]),
            indices: idx.reshape([b, g * g]),
            commit,
            codebook,
            z_flat: flat,
        }
    }

    /// Code vectors of token indices, as the decoder's input.
    ///
    /// # Shapes
    /// - `indices`: `[b, g·g]` → `[b, code_dim, g, g]`
    pub fn embed(&self, indices: Tensor<B, 2, Int>) -> Tensor<B, 4> {
        let [b, n] = indices.dims();
        let g = (n as f64).sqrt() as usize;
        let codes = self.codes();
        let d = codes.dims()[1];
        codes
            .select(0, indices.reshape([b * n]))
            .reshape([b, g, g, d])
            .permute([0, 3, 1, 2])
    }

    /// # Shapes
    /// - `z_q`: `[b, code_dim, 8, 8]` → `[b, 3, 64, 64]` in about [-1, 1]
    pub fn decode(&self, z_q: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.dec_in.forward(z_q);
        for block in &self.dec_blocks {
            x = block.forward(x);
        }
        let x = self.dec_up.forward(relu(x));
        let x = if self.patch == 8 {
            depth_to_space(x, 2)
        } else {
            x
        }; // [b, c1, 16, 16]
        let x = self.dec_fine.iter().fold(x, |x, block| block.forward(x));
        let x = relu(self.dec_mid.forward(relu(x)));
        depth_to_space(self.dec_out.forward(x), 4) // [b, 3, 64, 64]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = crate::Cpu;

    #[test]
    fn space_to_depth_round_trips() {
        let d = Default::default();
        let x = Tensor::<B, 4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &d);
        let y = depth_to_space(space_to_depth(x.clone(), 4), 4);
        let (a, b) = (
            x.into_data().to_vec::<f32>().unwrap(),
            y.into_data().to_vec::<f32>().unwrap(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_16x16_grid_of_4_pixel_tokens_round_trips_shapes() {
        let d = Default::default();
        let cfg = VqNetConfig {
            grid: 16,
            c1: 8,
            c2: 16,
            ..VqNetConfig::default()
        };
        cfg.validate().unwrap();
        let net = cfg.init_materialized::<B>(&d);
        let x = Tensor::<B, 4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &d);
        let q = net.quantize(net.encode(x));
        assert_eq!(q.indices.dims(), [1, 256]);
        assert_eq!(net.decode(net.embed(q.indices)).dims(), [1, 3, 64, 64]);
        assert!(VqNetConfig { grid: 12, ..cfg }.validate().is_err());
    }

    #[test]
    fn a_local_encoder_codes_each_token_from_its_own_pixels() {
        let d = Default::default();
        let cfg = VqNetConfig {
            c1: 8,
            c2: 16,
            local_encoder: true,
            ..VqNetConfig::default()
        };
        let net = cfg.init_materialized::<B>(&d);
        let dist = burn::tensor::Distribution::Default;
        let a = Tensor::<B, 4>::random([1, 3, 64, 64], dist, &d);
        // b: a's top-left token, everything else different.
        let mut b = Tensor::<B, 4>::random([1, 3, 64, 64], dist, &d);
        b = b.slice_assign(
            [0..1, 0..3, 0..8, 0..8],
            a.clone().slice([0..1, 0..3, 0..8, 0..8]),
        );
        let za = net.encode(a).slice([0..1, 0..16, 0..1, 0..1]);
        let zb = net.encode(b).slice([0..1, 0..16, 0..1, 0..1]);
        let (za, zb) = (
            za.into_data().to_vec::<f32>().unwrap(),
            zb.into_data().to_vec::<f32>().unwrap(),
        );
        assert_eq!(za, zb);
        // The convolutional encoder looks across tokens.
        let conv_net = VqNetConfig {
            local_encoder: false,
            ..cfg
        }
        .init_materialized::<B>(&d);
        let a = Tensor::<B, 4>::random([1, 3, 64, 64], dist, &d);
        let b = a.clone().slice_assign(
            [0..1, 0..3, 8..16, 0..8],
            Tensor::<B, 4>::ones([1, 3, 8, 8], &d),
        );
        let za = conv_net.encode(a).slice([0..1, 0..16, 0..1, 0..1]);
        let zb = conv_net.encode(b).slice([0..1, 0..16, 0..1, 0..1]);
        assert_ne!(
            za.into_data().to_vec::<f32>().unwrap(),
            zb.into_data().to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn shapes_and_indices_in_range() {
        let d = Default::default();
        let cfg = VqNetConfig::default();
        let net = cfg.init_materialized::<B>(&d);
        let x = Tensor::<B, 4>::random([2, 3, 64, 64], burn::tensor::Distribution::Default, &d);
        let q = net.quantize(net.encode(x));
        assert_eq!(q.indices.dims(), [2, 64]);
        let idx = q
            .indices
            .clone()
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        assert!(idx.iter().all(|&i| (0..512).contains(&i)));
        assert_eq!(net.decode(q.z_q).dims(), [2, 3, 64, 64]);
        // Decoding from indices equals decoding the quantised vectors.
        let a = net
            .decode(net.embed(q.indices))
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(a.len(), 2 * 3 * 64 * 64);
    }
}
