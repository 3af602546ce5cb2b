//! Ordered parallel work: items run `width` at a time on rayon's threads and their results are
//! handed back strictly in item order, so output files and progress never depend on which
//! thread finished first.

use rayon::prelude::*;

/// Runs `work` on `items`, `width` at once, and feeds every result to `sink` in item order.
/// Stops at the first error `sink` returns (items of the wave in flight have already run).
pub fn in_order<T, R, E>(
    items: &[T],
    width: usize,
    work: impl Fn(&T) -> R + Sync,
    mut sink: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    for wave in items.chunks(width.max(1)) {
        let results: Vec<R> = wave.par_iter().map(&work).collect();
        for (item, r) in wave.iter().zip(results) {
            sink(item, r)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_item_order_for_any_width() {
        let items: Vec<u64> = (0..23).collect();
        for width in [0, 1, 2, 5, 64] {
            let mut seen = Vec::new();
            in_order::<_, _, ()>(
                &items,
                width,
                |&i| {
                    // Later items finish first, so order can only come from the helper.
                    std::thread::sleep(std::time::Duration::from_micros(50 * (23 - i)));
                    i * 10
                },
                |&i, r| {
                    seen.push((i, r));
                    Ok(())
                },
            )
            .unwrap();
            let want: Vec<(u64, u64)> = items.iter().map(|&i| (i, i * 10)).collect();
            assert_eq!(seen, want, "width {width}");
        }
    }

    #[test]
    fn the_first_sink_error_stops_the_run() {
        let items: Vec<u32> = (0..10).collect();
        let mut fed = 0;
        let r = in_order(
            &items,
            3,
            |&i| i,
            |_, r| {
                fed += 1;
                if r == 4 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(fed, 5, "nothing after the failing item is fed");
    }
}
