//! The GenEval rules on hand-built detections, one edge case per test. Expected values follow
//! `evaluation/evaluate_images.py` (djghosh13/geneval @ af4902f).

use harness::rules::{judge, keep_detections, official_iou, relative_position, ClauseRef};
use harness::suite::parse_metadata_line;
use harness::{ClassId, Color, Detection, Metadata, Relation, RuleConfig, Tag};

fn meta(line: &str) -> Metadata {
    parse_metadata_line(line).expect("valid metadata")
}

fn det(class: &str, score: f64, bbox: [f64; 4], color: Option<Color>) -> Detection {
    Detection {
        class: ClassId::from_name(class).expect("known class"),
        score,
        bbox,
        color,
    }
}

fn verdict(m: &Metadata, d: &[Detection]) -> (bool, String) {
    let j = judge(m, d, &RuleConfig::default()).expect("colours present");
    (j.correct, j.reason)
}

const SINGLE_DOG: &str = r#"{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}"#;
const TWO_CLOCKS: &str = r#"{"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}], "prompt": "a photo of two clocks"}"#;
const DOG_LEFT_OF_CAKE: &str = r#"{"tag": "position", "include": [{"class": "cake", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "a photo of a dog left of a cake"}"#;

#[test]
fn score_exactly_at_threshold_is_dropped_strictly_above_is_kept() {
    let m = meta(SINGLE_DOG);
    let b = [0.0, 0.0, 10.0, 10.0];
    assert!(!verdict(&m, &[det("dog", 0.3, b, None)]).0);
    assert_eq!(
        verdict(&m, &[det("dog", 0.3, b, None)]).1,
        "expected dog>=1, found 0"
    );
    assert!(verdict(&m, &[det("dog", 0.300_000_000_000_000_1, b, None)]).0);
    assert!(verdict(&m, &[det("dog", 0.31, b, None)]).0);
}

#[test]
fn counting_uses_point_nine_for_every_class_strictly() {
    let m = meta(TWO_CLOCKS);
    let b = [0.0, 0.0, 10.0, 10.0];
    // Two at exactly 0.9: neither is kept.
    let (ok, reason) = verdict(
        &m,
        &[det("clock", 0.9, b, None), det("clock", 0.9, b, None)],
    );
    assert!(!ok);
    assert_eq!(reason, "expected clock>=2, found 0");
    // Two above and a third at exactly 0.9: exactly two kept, the exclude clause holds.
    let d = [
        det("clock", 0.95, b, None),
        det("clock", 0.91, b, None),
        det("clock", 0.9, b, None),
    ];
    assert!(verdict(&m, &d).0);
    // A third above 0.9 trips the exclude clause.
    let d = [
        det("clock", 0.95, b, None),
        det("clock", 0.91, b, None),
        det("clock", 0.92, b, None),
    ];
    assert_eq!(
        verdict(&m, &d),
        (false, "expected clock<3, found 3".to_string())
    );
    // The counting threshold applies to other classes too.
    let kept = keep_detections(
        Tag::Counting,
        &[det("dog", 0.5, b, None)],
        &RuleConfig::default(),
    );
    assert!(kept.is_empty());
}

#[test]
fn sixteen_cap_meets_an_exclude_clause() {
    let b = [0.0, 0.0, 10.0, 10.0];
    let many: Vec<Detection> = (0..20)
        .map(|i| det("clock", 0.91 + i as f64 * 0.001, b, None))
        .collect();
    // Exclude at 17 can never trip: at most 16 are kept.
    let m17 = meta(
        r#"{"tag": "counting", "include": [{"class": "clock", "count": 16}], "exclude": [{"class": "clock", "count": 17}], "prompt": "p"}"#,
    );
    let j = judge(&m17, &many, &RuleConfig::default()).unwrap();
    assert!(j.correct, "{}", j.reason);
    assert_eq!(j.kept[0].1.len(), 16);
    // The 16 kept are the 16 highest scores.
    assert!(j.kept[0].1.iter().all(|&i| i >= 4));
    // Exclude at 16 trips with exactly 16 kept, reporting the capped count.
    let m16 = meta(
        r#"{"tag": "counting", "include": [{"class": "clock", "count": 4}], "exclude": [{"class": "clock", "count": 16}], "prompt": "p"}"#,
    );
    assert_eq!(
        verdict(&m16, &many),
        (false, "expected clock<16, found 16".to_string())
    );
    // A lower cap changes the outcome.
    let cfg = RuleConfig {
        max_objects: 3,
        ..RuleConfig::default()
    };
    let j = judge(&m16, &many, &cfg).unwrap();
    assert_eq!(j.reason, "expected clock>=4, found 3");
}

#[test]
fn diagonal_offset_gives_two_relations() {
    // A is up-left of B by 45 degrees: both "left of" and "above".
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [100.0, 100.0, 110.0, 110.0];
    let r = relative_position(&a, &b, 0.1);
    assert!(r.contains(Relation::LeftOf) && r.contains(Relation::Above));
    assert!(!r.contains(Relation::RightOf) && !r.contains(Relation::Below));
    let r = relative_position(&b, &a, 0.1);
    assert!(r.contains(Relation::RightOf) && r.contains(Relation::Below));
    // The dog up-left of the cake passes "left of", and the reason lists both when it fails.
    let m = meta(DOG_LEFT_OF_CAKE);
    assert!(verdict(&m, &[det("cake", 0.9, b, None), det("dog", 0.9, a, None)]).0);
    let m_right = meta(
        r#"{"tag": "position", "include": [{"class": "cake", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}], "prompt": "p"}"#,
    );
    assert_eq!(
        verdict(
            &m_right,
            &[det("cake", 0.9, b, None), det("dog", 0.9, a, None)]
        ),
        (
            false,
            "expected dog right of target, found left of and above target".to_string()
        )
    );
}

#[test]
fn steep_diagonal_gives_one_relation() {
    // Offset (-10, -40): dx/|off| = -(10 - 2)/41.2 > -0.5, so only "above".
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [10.0, 40.0, 20.0, 50.0];
    let r = relative_position(&a, &b, 0.1);
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![Relation::Above]);
}

#[test]
fn margin_cancels_an_offset() {
    // Centres 3 px apart horizontally; margin 0.1 * (20 + 20) = 4 > 3: no relation at all.
    let a = [0.0, 0.0, 20.0, 20.0];
    let b = [3.0, 0.0, 23.0, 20.0];
    assert!(relative_position(&a, &b, 0.1).is_empty());
    let m = meta(DOG_LEFT_OF_CAKE);
    assert_eq!(
        verdict(&m, &[det("cake", 0.9, b, None), det("dog", 0.9, a, None)]),
        (
            false,
            "expected dog left of target, found  target".to_string()
        )
    );
    // With no margin the same boxes are "left of".
    let r = relative_position(&a, &b, 0.0);
    assert!(r.contains(Relation::LeftOf));
    // Identical centres: no relation, no division by zero.
    assert!(relative_position(&a, &a, 0.1).is_empty());
}

#[test]
fn margin_can_cancel_one_axis_but_not_the_other() {
    // Offset (30, 2); vertical margin 0.1*(20+20) = 4 removes the small vertical part.
    let a = [30.0, 2.0, 50.0, 22.0];
    let b = [0.0, 0.0, 20.0, 20.0];
    let r = relative_position(&a, &b, 0.1);
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![Relation::RightOf]);
}

#[test]
fn failed_anchor_group_means_no_target() {
    let m = meta(DOG_LEFT_OF_CAKE);
    // No cake: the cake clause fails, and the dog's position clause fails with "no target".
    let (ok, reason) = verdict(&m, &[det("dog", 0.9, [0.0, 0.0, 5.0, 5.0], None)]);
    assert!(!ok);
    assert_eq!(
        reason,
        "expected cake>=1, found 0\nno target for dog to be left of"
    );
    // A cake that fails its colour clause also leaves no target.
    let m = meta(
        r#"{"tag": "position", "include": [{"class": "cake", "count": 1, "color": "red"}, {"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "p"}"#,
    );
    let j = judge(
        &m,
        &[
            det("cake", 0.9, [50.0, 0.0, 60.0, 10.0], Some(Color::Blue)),
            det("dog", 0.9, [0.0, 0.0, 5.0, 5.0], None),
        ],
        &RuleConfig::default(),
    )
    .unwrap();
    assert_eq!(
        j.reason,
        "expected red cake>=1, found 0 red; and 1 blue\nno target for dog to be left of"
    );
    assert_eq!(j.clauses.len(), 2);
    assert!(!j.clauses[0].passed && !j.clauses[1].passed);
}

#[test]
fn position_is_checked_against_every_object_of_the_group() {
    // Two cakes in the anchor group (count 2): the dog must be left of both.
    let m = meta(
        r#"{"tag": "position", "include": [{"class": "cake", "count": 2}, {"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "p"}"#,
    );
    let dog = det("dog", 0.9, [40.0, 0.0, 50.0, 10.0], None);
    let cake_right = det("cake", 0.9, [100.0, 0.0, 110.0, 10.0], None);
    let cake_left = det("cake", 0.8, [0.0, 0.0, 10.0, 10.0], None);
    let (ok, reason) = verdict(&m, &[cake_right, cake_left, dog]);
    assert!(!ok);
    assert_eq!(reason, "expected dog left of target, found right of target");
}

#[test]
fn colour_is_judged_on_the_top_count_objects_only() {
    let m = meta(
        r#"{"tag": "colors", "include": [{"class": "dog", "count": 2, "color": "red"}], "prompt": "p"}"#,
    );
    let b = [0.0, 0.0, 10.0, 10.0];
    // Top two are red; a lower-scoring blue dog is never looked at.
    let d = [
        det("dog", 0.5, b, Some(Color::Blue)),
        det("dog", 0.9, b, Some(Color::Red)),
        det("dog", 0.8, b, Some(Color::Red)),
    ];
    assert!(verdict(&m, &d).0);
    // A blue dog among the top two fails, and the tally lists colours in official order.
    let d = [
        det("dog", 0.7, b, Some(Color::Red)),
        det("dog", 0.9, b, Some(Color::Blue)),
        det("dog", 0.8, b, Some(Color::Red)),
    ];
    assert_eq!(
        verdict(&m, &d),
        (
            false,
            "expected red dog>=2, found 1 red; and 1 red, 1 blue".to_string()
        )
    );
    // The detection below the threshold needs no colour at all.
    let d = [
        det("dog", 0.9, b, Some(Color::Red)),
        det("dog", 0.8, b, Some(Color::Red)),
        det("dog", 0.2, b, None),
    ];
    assert!(verdict(&m, &d).0);
    // A colour the rules need but that is missing is an error, not a silent verdict.
    let d = [
        det("dog", 0.9, b, Some(Color::Red)),
        det("dog", 0.8, b, None),
    ];
    let err = judge(&m, &d, &RuleConfig::default()).unwrap_err();
    assert_eq!((err.detection, err.clause), (1, 0));
}

#[test]
fn equal_scores_keep_the_later_detection_first() {
    // np.argsort(scores)[::-1] on a stable sort: the later of two equal scores comes first, so
    // it is the one a count-1 clause looks at.
    let m = meta(
        r#"{"tag": "colors", "include": [{"class": "dog", "count": 1, "color": "red"}], "prompt": "p"}"#,
    );
    let b = [0.0, 0.0, 10.0, 10.0];
    let d = [
        det("dog", 0.8, b, Some(Color::Blue)),
        det("dog", 0.8, b, Some(Color::Red)),
    ];
    assert!(verdict(&m, &d).0);
    let d = [
        det("dog", 0.8, b, Some(Color::Red)),
        det("dog", 0.8, b, Some(Color::Blue)),
    ];
    assert!(!verdict(&m, &d).0);
}

#[test]
fn nms_is_off_by_default_and_uses_the_official_iou_when_on() {
    let m = meta(TWO_CLOCKS);
    let d = [
        det("clock", 0.95, [0.0, 0.0, 10.0, 10.0], None),
        det("clock", 0.94, [1.0, 1.0, 11.0, 11.0], None),
    ];
    assert!(verdict(&m, &d).0);
    // IoU with +1 widths: inter 10*10 = 100, union 121+121-100 = 142 -> 0.704.
    assert!((official_iou(&d[0].bbox, &d[1].bbox) - 100.0 / 142.0).abs() < 1e-12);
    let nms = RuleConfig {
        max_overlap: 0.7,
        ..RuleConfig::default()
    };
    let j = judge(&m, &d, &nms).unwrap();
    assert_eq!(j.reason, "expected clock>=2, found 1");
    let loose = RuleConfig {
        max_overlap: 0.71,
        ..RuleConfig::default()
    };
    assert!(judge(&m, &d, &loose).unwrap().correct);
}

#[test]
fn every_failing_clause_is_reported_and_all_clauses_are_evaluated() {
    let m = meta(
        r#"{"tag": "color_attr", "include": [{"class": "dog", "count": 1, "color": "red"}, {"class": "cat", "count": 1, "color": "blue"}], "prompt": "p"}"#,
    );
    let j = judge(
        &m,
        &[det("dog", 0.9, [0.0, 0.0, 5.0, 5.0], Some(Color::Green))],
        &RuleConfig::default(),
    )
    .unwrap();
    assert_eq!(
        j.reason,
        "expected red dog>=1, found 0 red; and 1 green\nexpected cat>=1, found 0"
    );
    assert_eq!(j.clauses[0].clause, ClauseRef::Include(0));
    assert_eq!(j.clauses[1].found, 0);
}

#[test]
fn details_list_kept_boxes_per_class_in_label_order() {
    let m = meta(SINGLE_DOG);
    let d = [
        det("dog", 0.5, [1.0, 2.0, 3.0, 4.0], None),
        det("person", 0.25, [0.0, 0.0, 1.0, 1.0], None),
        det("dog", 0.75, [5.5, 6.0, 7.0, 8.0], None),
        det("bicycle", 0.35, [0.0, 0.0, 1.0, 1.0], None),
    ];
    let j = judge(&m, &d, &RuleConfig::default()).unwrap();
    assert_eq!(
        j.details_json(&d),
        r#"{"bicycle": [[0.0, 0.0, 1.0, 1.0, 0.35]], "dog": [[5.5, 6.0, 7.0, 8.0, 0.75], [1.0, 2.0, 3.0, 4.0, 0.5]]}"#
    );
}

#[test]
fn tie_order_beyond_seventeen_detections_follows_numpy_introsort() {
    // 20 equal-score dogs: numpy 1.23's argsort gives [0, 17, 16, …, 1, 18, 19]; reversed, the
    // most confident is detection 19, then 18, then 1.
    let m = meta(
        r#"{"tag": "colors", "include": [{"class": "dog", "count": 1, "color": "red"}], "prompt": "p"}"#,
    );
    let b = [0.0, 0.0, 10.0, 10.0];
    let mut d: Vec<Detection> = (0..20)
        .map(|_| det("dog", 0.8, b, Some(Color::Blue)))
        .collect();
    d[19].color = Some(Color::Red);
    assert!(verdict(&m, &d).0);
    d[19].color = Some(Color::Blue);
    d[0].color = Some(Color::Red);
    assert!(!verdict(&m, &d).0);
    let j = judge(&m, &d, &RuleConfig::default()).unwrap();
    assert_eq!(&j.kept[0].1[..3], &[19, 18, 1]);
    // Reversed order is [19, 18, 1, 2, …, 17, 0]; the 16-cap drops its last four: 15, 16, 17, 0.
    let mut expected = vec![19, 18];
    expected.extend(1..=14);
    assert_eq!(j.kept[0].1, expected);
}
