//! One job's candidates on disk: every state of every trajectory (after each step) and what the
//! evaluation detector saw in each final image. Little-endian binary, gzip-compressed; each
//! state's tokens and prediction are stored XOR the previous state's, so the positions a step did
//! not change are zeros and compress to almost nothing.

use crate::detector::{DetectedObject, Mask};
use crate::generator::Trajectory;
use crate::ClassId;
use std::io::{Read, Write};

const MAGIC: &[u8; 4] = b"EVBJ";
const VERSION: u32 = 1;

/// One candidate of a banked job.
#[derive(Debug, Clone, PartialEq)]
pub struct BankedCandidate {
    /// Every state of the trajectory: the fresh one, then one after each step.
    pub states: Vec<Trajectory>,
    /// The state `run_to_end` gives from the fresh state, where the generator finishes in a
    /// pass that charges other compute than stepping (see
    /// [`crate::generator::Generator::run_to_end_is_stepping`]); its image is the last state's.
    pub end: Option<Trajectory>,
    /// Content hash of the final image as the detector received it (after resizing).
    pub image_hash: u128,
    /// The evaluation detector's output on that image.
    pub objects: Vec<DetectedObject>,
    /// The GenEval verdict of the final image by the evaluation detector.
    pub correct: bool,
    /// The rules' reason (or why the image could not be judged).
    pub reason: String,
}

impl BankedCandidate {
    /// The final state.
    pub fn last(&self) -> &Trajectory {
        self.states
            .last()
            .expect("a banked candidate has at least its fresh state")
    }
}

/// The N candidates of one (prompt, image).
#[derive(Debug, Clone, PartialEq)]
pub struct BankedJob {
    pub prompt_index: usize,
    pub image_index: usize,
    pub prompt: String,
    pub candidates: Vec<BankedCandidate>,
}

/// A content hash of an image's pixels and size (two FNV-1a lanes with different offsets): a
/// cache key, not a security property.
pub fn image_hash(img: &image::RgbImage) -> u128 {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    let size = [img.width().to_le_bytes(), img.height().to_le_bytes()].concat();
    for &byte in size.iter().chain(img.as_raw().iter()) {
        a = (a ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ byte as u64)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    ((a as u128) << 64) | b as u128
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("bank lengths fit in 32 bits"));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    /// A trajectory state, its tokens and prediction XOR `prev`'s.
    fn state(&mut self, s: &Trajectory, prev: Option<&Trajectory>) {
        self.u64(s.seed);
        self.len(s.step);
        self.len(s.steps);
        self.len(s.schedule_masked);
        self.u64(s.forwards);
        self.tokens(&s.tokens, prev.map_or(&[][..], |p| &p.tokens));
        self.tokens(&s.prediction, prev.map_or(&[][..], |p| &p.prediction));
    }
    /// `now` XOR `before` (zeros past the shorter one's end are taken as zeros).
    fn tokens(&mut self, now: &[u32], before: &[u32]) {
        self.len(now.len());
        for (i, &t) in now.iter().enumerate() {
            self.u32(t ^ before.get(i).copied().unwrap_or(0));
        }
    }
}

struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl In<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// A length, refused when it could not fit in what is left (a corrupt file must not make
    /// the reader allocate gigabytes).
    fn len(&mut self, unit: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(unit) > self.bytes.len() - self.at {
            return Err(format!(
                "length {n} at byte {} runs past the end",
                self.at - 4
            ));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| format!("text is not UTF-8: {e}"))
    }
    fn state(&mut self, prompt: &str, prev: Option<&Trajectory>) -> Result<Trajectory, String> {
        let seed = self.u64()?;
        let step = self.u32()? as usize;
        let steps = self.u32()? as usize;
        let schedule_masked = self.u32()? as usize;
        let forwards = self.u64()?;
        let tokens = self.tokens(prev.map_or(&[][..], |p| &p.tokens))?;
        let prediction = self.tokens(prev.map_or(&[][..], |p| &p.prediction))?;
        Ok(Trajectory {
            prompt: prompt.to_string(),
            seed,
            step,
            steps,
            tokens,
            prediction,
            schedule_masked,
            forwards,
            state: None,
            preview: None,
        })
    }
    fn tokens(&mut self, before: &[u32]) -> Result<Vec<u32>, String> {
        let n = self.len(4)?;
        (0..n)
            .map(|i| Ok(self.u32()? ^ before.get(i).copied().unwrap_or(0)))
            .collect()
    }
}

/// The job as gzip-compressed bytes.
pub fn encode(job: &BankedJob) -> Vec<u8> {
    let mut o = Out(Vec::new());
    o.0.extend_from_slice(MAGIC);
    o.u32(VERSION);
    o.len(job.prompt_index);
    o.len(job.image_index);
    o.str(&job.prompt);
    o.len(job.candidates.len());
    for c in &job.candidates {
        o.len(c.states.len());
        let mut prev: Option<&Trajectory> = None;
        for s in &c.states {
            o.state(s, prev);
            prev = Some(s);
        }
        match &c.end {
            None => o.u8(0),
            Some(e) => {
                o.u8(1);
                o.state(e, prev);
            }
        }
        o.0.extend_from_slice(&c.image_hash.to_le_bytes());
        o.len(c.objects.len());
        for ob in &c.objects {
            o.len(ob.class.index());
            o.f32(ob.score);
            ob.bbox.iter().for_each(|&v| o.f32(v));
            ob.color_probs.iter().for_each(|&v| o.f32(v));
            match &ob.mask {
                None => o.u8(0),
                Some(m) => {
                    o.u8(1);
                    o.u32(m.width);
                    o.u32(m.height);
                    o.len(m.bits.len());
                    m.bits.iter().for_each(|&b| o.u8(b as u8));
                }
            }
        }
        o.u8(c.correct as u8);
        o.str(&c.reason);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&o.0).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// The job from [`encode`]'s bytes; an error says what is wrong and where.
pub fn decode(bytes: &[u8]) -> Result<BankedJob, String> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut raw)
        .map_err(|e| format!("not a whole gzip stream: {e}"))?;
    let mut r = In { bytes: &raw, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not an evalcot bank job (bad magic)".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!(
            "bank job format {version}, this build reads {VERSION}"
        ));
    }
    let prompt_index = r.u32()? as usize;
    let image_index = r.u32()? as usize;
    let prompt = r.str()?;
    let n = r.len(1)?;
    let mut candidates = Vec::with_capacity(n);
    for _ in 0..n {
        let count = r.len(1)?;
        if count == 0 {
            return Err("a candidate without states".into());
        }
        let mut states: Vec<Trajectory> = Vec::with_capacity(count);
        for _ in 0..count {
            let s = r.state(&prompt, states.last())?;
            states.push(s);
        }
        let end = match r.u8()? {
            0 => None,
            1 => Some(r.state(&prompt, states.last())?),
            other => return Err(format!("end flag {other}")),
        };
        let image_hash = u128::from_le_bytes(r.take(16)?.try_into().expect("16 bytes"));
        let objects = (0..r.len(1)?)
            .map(|_| {
                let class = r.u32()?;
                let class = ClassId::new(class as usize)
                    .ok_or_else(|| format!("class id {class} out of range"))?;
                let score = r.f32()?;
                let mut bbox = [0f32; 4];
                for v in &mut bbox {
                    *v = r.f32()?;
                }
                let mut color_probs = [0f32; 10];
                for v in &mut color_probs {
                    *v = r.f32()?;
                }
                let mask = match r.u8()? {
                    0 => None,
                    1 => {
                        let width = r.u32()?;
                        let height = r.u32()?;
                        let n = r.len(1)?;
                        let bits = r.take(n)?.iter().map(|&b| b != 0).collect();
                        Some(Mask {
                            width,
                            height,
                            bits,
                        })
                    }
                    other => return Err(format!("mask flag {other}")),
                };
                Ok(DetectedObject {
                    class,
                    score,
                    bbox,
                    color_probs,
                    mask,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let correct = r.u8()? != 0;
        let reason = r.str()?;
        candidates.push(BankedCandidate {
            states,
            end,
            image_hash,
            objects,
            correct,
            reason,
        });
    }
    if r.at != raw.len() {
        return Err(format!(
            "{} bytes after the last candidate",
            raw.len() - r.at
        ));
    }
    Ok(BankedJob {
        prompt_index,
        image_index,
        prompt,
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> BankedJob {
        let mut t = Trajectory::new("a red cat", 99, 3, 6);
        let mut states = vec![t.clone()];
        for s in 0..3 {
            t.step = s + 1;
            t.tokens[s] = 7 + s as u32;
            t.prediction = vec![40 + s as u32; 6];
            t.forwards += 2;
            t.schedule_masked = 6;
            states.push(t.clone());
        }
        BankedJob {
            prompt_index: 12,
            image_index: 3,
            prompt: "a red cat".into(),
            candidates: vec![BankedCandidate {
                end: Some(Trajectory {
                    forwards: 2,
                    ..states[3].clone()
                }),
                states,
                image_hash: u128::MAX - 5,
                objects: vec![DetectedObject {
                    class: ClassId::from_name("cat").unwrap(),
                    score: 0.93,
                    bbox: [1.0, 2.5, 30.0, 40.25],
                    color_probs: [0.1; 10],
                    mask: Some(Mask {
                        width: 2,
                        height: 1,
                        bits: vec![true, false],
                    }),
                }],
                correct: true,
                reason: "".into(),
            }],
        }
    }

    #[test]
    fn a_job_round_trips_exactly() {
        let j = job();
        assert_eq!(decode(&encode(&j)).unwrap(), j);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused() {
        let bytes = encode(&job());
        let err = decode(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(err.contains("gzip"), "{err}");
        assert!(decode(b"hello").is_err());
        // A whole gzip stream of something else.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"EVBJ\x01\x00\x00\x00\x05").unwrap();
        let err = decode(&gz.finish().unwrap()).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn image_hashes_tell_pixels_and_sizes_apart() {
        let a = image::RgbImage::new(4, 4);
        let mut b = a.clone();
        b.put_pixel(3, 3, image::Rgb([0, 0, 1]));
        assert_ne!(image_hash(&a), image_hash(&b));
        assert_ne!(image_hash(&image::RgbImage::new(2, 8)), image_hash(&a));
        assert_eq!(image_hash(&a), image_hash(&a.clone()));
    }
}
