//! `np.argsort(x)` for float64 exactly as numpy 1.23 (GenEval's pinned environment) computes it:
//! introsort — median-of-three quicksort, insertion sort on partitions of at most 16 elements,
//! heapsort past a depth limit. It is not stable, and GenEval reads its tie order: which of two
//! equal-score detections counts as the most confident one decides colour and position checks.
//! A port of numpy's `aquicksort_`/`aheapsort_` (numpy/core/src/npysort), not a generic sort.

/// numpy's `SMALL_QUICKSORT`.
const SMALL_QUICKSORT: usize = 15;

/// numpy's `DOUBLE_LT`: NaN sorts after every number.
fn less(a: f64, b: f64) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// `np.argsort(values)` (kind="quicksort", numpy 1.23).
pub fn argsort(values: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    if values.len() > 1 {
        aquicksort(values, &mut idx);
    }
    idx
}

fn msb(mut n: usize) -> i32 {
    let mut depth = 0;
    while n > 1 {
        n >>= 1;
        depth += 1;
    }
    depth
}

fn aquicksort(v: &[f64], t: &mut [usize]) {
    let num = t.len();
    let mut stack: Vec<(usize, usize, i32)> = Vec::new();
    let (mut pl, mut pr) = (0usize, num - 1);
    let mut cdepth = msb(num) * 2;
    loop {
        if cdepth < 0 {
            aheapsort(v, &mut t[pl..=pr]);
        } else {
            while pr - pl > SMALL_QUICKSORT {
                let pm = pl + ((pr - pl) >> 1);
                if less(v[t[pm]], v[t[pl]]) {
                    t.swap(pm, pl);
                }
                if less(v[t[pr]], v[t[pm]]) {
                    t.swap(pr, pm);
                }
                if less(v[t[pm]], v[t[pl]]) {
                    t.swap(pm, pl);
                }
                let vp = v[t[pm]];
                let mut pi = pl;
                let mut pj = pr - 1;
                t.swap(pm, pj);
                loop {
                    pi += 1;
                    while less(v[t[pi]], vp) {
                        pi += 1;
                    }
                    pj -= 1;
                    while less(vp, v[t[pj]]) {
                        pj -= 1;
                    }
                    if pi >= pj {
                        break;
                    }
                    t.swap(pi, pj);
                }
                let pk = pr - 1;
                t.swap(pi, pk);
                // Push the larger partition, continue with the smaller.
                cdepth -= 1;
                if pi - pl < pr - pi {
                    stack.push((pi + 1, pr, cdepth));
                    pr = pi - 1;
                } else {
                    stack.push((pl, pi - 1, cdepth));
                    pl = pi + 1;
                }
            }
            // Insertion sort.
            for pi in pl + 1..=pr {
                let vi = t[pi];
                let vp = v[vi];
                let mut pj = pi;
                while pj > pl && less(vp, v[t[pj - 1]]) {
                    t[pj] = t[pj - 1];
                    pj -= 1;
                }
                t[pj] = vi;
            }
        }
        match stack.pop() {
            Some((l, r, d)) => {
                pl = l;
                pr = r;
                cdepth = d;
            }
            None => break,
        }
    }
}

fn aheapsort(v: &[f64], t: &mut [usize]) {
    // 1-based heap indexing as in numpy: a[k] is t[k - 1].
    let n0 = t.len();
    for l in (1..=n0 >> 1).rev() {
        let tmp = t[l - 1];
        sift_down(v, t, tmp, l, n0);
    }
    let mut n = n0;
    while n > 1 {
        let tmp = t[n - 1];
        t[n - 1] = t[0];
        n -= 1;
        sift_down(v, t, tmp, 1, n);
    }
}

/// Places `tmp` at heap position `i` (1-based) of a heap of `n`, moving larger children up.
fn sift_down(v: &[f64], t: &mut [usize], tmp: usize, mut i: usize, n: usize) {
    let mut j = i << 1;
    while j <= n {
        if j < n && less(v[t[j - 1]], v[t[j]]) {
            j += 1;
        }
        if less(v[tmp], v[t[j - 1]]) {
            t[i - 1] = t[j - 1];
            i = j;
            j += j;
        } else {
            break;
        }
    }
    t[i - 1] = tmp;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn is_sorted_perm(v: &[f64], idx: &[usize]) -> bool {
        let mut seen = vec![false; v.len()];
        for &i in idx {
            seen[i] = true;
        }
        seen.iter().all(|s| *s) && idx.windows(2).all(|w| !less(v[w[1]], v[w[0]]))
    }

    #[test]
    fn sorts_any_input() {
        let mut rng = Rng::new(5);
        for n in 0..200 {
            let v: Vec<f64> = (0..n).map(|_| (rng.below(7) as f64) / 7.0).collect();
            assert!(is_sorted_perm(&v, &argsort(&v)), "n={n}");
        }
        let v: Vec<f64> = (0..1000).map(|i| -(i as f64)).collect();
        assert!(is_sorted_perm(&v, &argsort(&v)));
        let nan = [1.0, f64::NAN, 0.5];
        assert_eq!(argsort(&nan), vec![2, 0, 1]);
    }

    #[test]
    fn heapsort_fallback_sorts() {
        let mut rng = Rng::new(11);
        let v: Vec<f64> = (0..100).map(|_| rng.below(10) as f64).collect();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        aheapsort(&v, &mut idx);
        assert!(is_sorted_perm(&v, &idx));
    }

    #[test]
    fn small_arrays_are_insertion_sorted_so_ties_keep_input_order() {
        let v = [0.5; 16];
        assert_eq!(argsort(&v), (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn tie_order_matches_numpy_1_23_on_large_arrays() {
        // Recorded with numpy 1.23.5 (`np.argsort(x).tolist()`).
        assert_eq!(
            argsort(&[1.0; 20]),
            vec![0, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 18, 19]
        );
        let v = [
            0.5, 0.2, 0.5, 0.9, 0.5, 0.2, 0.1, 0.5, 0.5, 0.3, 0.5, 0.2, 0.5, 0.9, 0.5, 0.2, 0.1,
            0.5, 0.5, 0.3, 0.5, 0.2, 0.7,
        ];
        assert_eq!(
            argsort(&v),
            vec![6, 16, 11, 1, 5, 15, 21, 19, 9, 20, 18, 17, 14, 0, 12, 10, 8, 7, 4, 2, 22, 3, 13]
        );
        // 17 values: the smallest size that numpy partitions before insertion sort.
        let v = [
            0.300000001,
            0.58,
            0.7236582427488945,
            0.8249824001904028,
            0.30000000000000004,
            0.49,
            0.30000000000000004,
            0.771381202067343,
            0.46238425043910814,
            0.5873701213218816,
            0.43,
            0.30000000000000004,
            0.74,
            0.95,
            0.300000001,
            0.6065186830773975,
            0.45547973938682546,
        ];
        assert_eq!(
            argsort(&v),
            vec![11, 4, 6, 0, 14, 10, 16, 8, 5, 1, 9, 15, 2, 12, 7, 3, 13]
        );
        // x = [((i * 7919) % 13) / 13 for i in range(300)]: many ties, several partitions.
        let x: Vec<f64> = (0..300).map(|i| ((i * 7919) % 13) as f64 / 13.0).collect();
        assert_eq!(
            argsort(&x)[..40].to_vec(),
            vec![
                0, 52, 65, 78, 91, 104, 117, 130, 143, 156, 169, 182, 195, 208, 221, 234, 247, 260,
                273, 286, 39, 26, 299, 13, 267, 111, 137, 46, 293, 72, 150, 163, 20, 98, 124, 176,
                254, 189, 33, 85
            ]
        );
    }
}
