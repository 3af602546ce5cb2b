//! Ordered parallel work: items run `width` at a time on rayon's threads and their results are
//! handed back strictly in item order, so output files and progress never depend on which
//! thread finished first.

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `work` on `items`, `width` at once, and feeds every result to `sink` in item order.
/// Stops at the first error `sink` returns (items already started still run to their end, and
/// their results are dropped).
///
/// Each of the `width` workers takes the next unstarted item as soon as it is free, so a slow
/// item holds back only the sinking of later results, not the other workers (items of uneven
/// cost, such as PARM batches whose paths are truncated at different steps, kept a core idle
/// at every wave's end when the items ran in lock-step waves).
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
    let width = width.max(1);
    if width == 1 || rayon::current_thread_index().is_some() {
        // Inside the pool, the sinking thread would block a worker the spawned work needs
        // (a one-thread pool would deadlock): run in waves there.
        for wave in items.chunks(width) {
            let results: Vec<R> = wave.par_iter().map(&work).collect();
            for (item, r) in wave.iter().zip(results) {
                sink(item, r)?;
            }
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    rayon::in_place_scope(|scope| {
        for _ in 0..width {
            let tx = tx.clone();
            let (next, stop, work) = (&next, &stop, &work);
            scope.spawn(move |_| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if tx.send((i, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Results wait here until every earlier item has been sunk.
        let mut pending = BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx.iter() {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                if let Err(e) = sink(&items[want], r) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                want += 1;
            }
        }
        Ok(())
    })
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

    /// Item 0 finishes only once item 2 has started: in lock-step waves of two, item 2 would
    /// wait for item 0 (the bounded wait then reports false).
    #[test]
    fn a_slow_item_does_not_hold_back_the_other_workers() {
        if rayon::current_num_threads() < 2 {
            eprintln!("skipped: needs two rayon threads");
            return;
        }
        let started = AtomicBool::new(false);
        let items: Vec<usize> = (0..4).collect();
        let mut seen = Vec::new();
        in_order::<_, _, ()>(
            &items,
            2,
            |&i| {
                if i == 2 {
                    started.store(true, Ordering::SeqCst);
                }
                if i == 0 {
                    let t = std::time::Instant::now();
                    while !started.load(Ordering::SeqCst) {
                        if t.elapsed().as_secs() > 20 {
                            return false;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                true
            },
            |&i, ok| {
                seen.push((i, ok));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, vec![(0, true), (1, true), (2, true), (3, true)]);
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
