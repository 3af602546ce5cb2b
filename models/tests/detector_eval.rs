//! The detector validation's counts on a few held-out renders with the shipped detector.

use models::detector::eval::evaluate;

#[test]
fn counts_at_the_counting_threshold_are_a_subset_of_those_at_0_3() {
    let device = Default::default();
    let det = models::embedded::evaluation_detector::<models::Cpu>(&device).unwrap();
    // No suite images: only the held-out scenes and the empty images are evaluated.
    let ev = evaluate(&det, 777, 40, 4, 0, 1234).unwrap();
    assert!(ev.suite_rows.is_empty());
    let (tp, fp, fn_) = ev.per_class.iter().fold((0, 0, 0), |a, (_, c)| {
        (a.0 + c.true_pos, a.1 + c.false_pos, a.2 + c.false_neg)
    });
    assert_eq!(
        tp + fn_,
        ev.objects,
        "every object is found or missed at 0.3"
    );
    let s = ev.strict;
    assert_eq!(s.true_pos + s.false_neg, ev.objects, "and at 0.9");
    assert!(s.true_pos <= tp && s.false_pos <= fp, "{s:?} vs {tp} {fp}");
    // The shipped detector finds most objects even at 0.9 (0.84 on 2,000 scenes).
    assert!(s.recall() > 0.6 && s.precision() > 0.9, "{s:?}");
}
