use super::*;
use harness::Suite;

#[test]
fn every_official_prompt_gets_a_scene_that_the_rules_accept() {
    let suite = Suite::official();
    for p in &suite.prompts {
        for i in 0..2u64 {
            let s = scene_for_metadata(&p.metadata, 100 + i, &SceneOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", p.metadata.prompt));
            assert!(s.satisfies(&p.metadata), "{}", p.metadata.prompt);
            let n: u32 = p.metadata.include.iter().map(|c| c.count).sum();
            assert_eq!(s.objects.len(), n as usize);
            for o in &s.objects {
                assert!(o.visible_fraction >= MIN_VISIBLE);
                let b = o.bbox;
                assert!(b[0] >= 0.0 && b[2] <= 64.0 && b[0] < b[2] && b[1] < b[3]);
                assert_eq!(o.mask.bbox(), Some(b));
            }
        }
    }
}

#[test]
fn scenes_are_deterministic_per_seed() {
    let m = &Suite::official().prompts[300].metadata;
    let a = scene_for_metadata(m, 9, &SceneOptions::default()).unwrap();
    let b = scene_for_metadata(m, 9, &SceneOptions::default()).unwrap();
    let c = scene_for_metadata(m, 10, &SceneOptions::default()).unwrap();
    assert_eq!(a.image, b.image);
    assert_eq!(a.objects, b.objects);
    assert_ne!(a.image, c.image);
}

#[test]
fn distractors_are_other_classes_and_keep_the_scene_correct() {
    let suite = Suite::official();
    for p in suite.prompts.iter().step_by(7) {
        let opts = SceneOptions {
            distractors: 1,
            ..SceneOptions::default()
        };
        let s = scene_for_metadata(&p.metadata, 3, &opts).unwrap();
        let n: u32 = p.metadata.include.iter().map(|c| c.count).sum();
        assert_eq!(s.objects.len(), n as usize + 1);
        assert!(s.satisfies(&p.metadata));
    }
}

#[test]
fn painted_pixels_match_masks_and_objects_contrast_with_the_background() {
    let s = random_scene(4, 5);
    for o in &s.objects {
        let detail = palette::detail_rgb(o.rgb, o.color);
        for y in 0..64 {
            for x in 0..64 {
                if o.mask.get(x, y) {
                    let p = s.image.get_pixel(x, y).0;
                    assert!(p == o.rgb || p == detail);
                }
            }
        }
    }
    // Masks of different objects never share a pixel.
    for y in 0..64 {
        for x in 0..64 {
            assert!(s.objects.iter().filter(|o| o.mask.get(x, y)).count() <= 1);
        }
    }
    assert!(random_scene(5, 0).objects.is_empty());
}

#[test]
fn canonical_glyphs_are_the_same_pixels_on_the_token_grid_wherever_they_stand() {
    let meta = crate::parse_prompt("a photo of a red dog").unwrap();
    let opts = SceneOptions::in_style(Style::Canonical);
    let crop = |s: &Scene| {
        let b = s.objects[0].bbox;
        let (x0, y0) = (b[0] as u32, b[1] as u32);
        let img = image::imageops::crop_imm(&s.image, x0, y0, 20, 20).to_image();
        (img, x0 % 8, y0 % 8, (x0, y0))
    };
    let scenes: Vec<Scene> = (0..12)
        .map(|seed| scene_for_metadata(&meta, seed, &opts).unwrap())
        .collect();
    let first = crop(&scenes[0]);
    let mut places = std::collections::BTreeSet::new();
    for s in &scenes {
        let c = crop(s);
        assert_eq!((&c.0, c.1, c.2), (&first.0, first.1, first.2));
        places.insert(c.3);
        // Everything off the object and its outline is the flat background.
        let o = &s.objects[0];
        let far = |x: u32, y: u32| {
            let b = o.bbox;
            (x as f64) < b[0] - 2.0
                || (x as f64) > b[2] + 1.0
                || (y as f64) < b[1] - 2.0
                || (y as f64) > b[3] + 1.0
        };
        for (x, y, p) in s.image.enumerate_pixels() {
            if far(x, y) {
                assert_eq!(p.0, CANONICAL_BACKGROUND);
            }
        }
        assert_eq!(o.rgb, palette::base_rgb(Color::Red));
    }
    assert!(places.len() > 3, "the dog should stand in several places");
    // The natural style is untouched by the option's existence.
    let natural = scene_for_metadata(&meta, 0, &SceneOptions::default()).unwrap();
    assert_ne!(natural.image, scenes[0].image);
}

#[test]
fn too_many_objects_is_an_error() {
    let dog = ClassId::from_name("dog").unwrap();
    let inc = vec![Include {
        class: dog,
        count: 9,
        color: None,
        position: None,
    }];
    let err = sample_scene(&inc, &[], 1, &SceneOptions::default(), |_| true).unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
}
