//! Presence writes coalesced per device (issue 11 item 3): a batch of
//! state changes taken for the database carries at most one presence write
//! per device, so a device that connects and disconnects a hundred times
//! between two flushes costs one row update, not two hundred. Only the
//! last state matters for the row (online, last seen), and the address is
//! the last one a login gave, as the row's `COALESCE` would leave it.

use std::collections::HashMap;

use super::StoreWrite;

/// `batch` with each device's presence writes merged into its last one,
/// kept at the last one's place (after whatever created the device);
/// every other write unchanged, in order.
pub(super) fn coalesce_presence(batch: Vec<StoreWrite>) -> Vec<StoreWrite> {
    let mut out: Vec<Option<StoreWrite>> = Vec::with_capacity(batch.len());
    let mut last: HashMap<Box<str>, usize> = HashMap::new();
    for write in batch {
        let StoreWrite::Presence {
            device,
            online,
            at_ms,
            mut address,
        } = write
        else {
            out.push(Some(write));
            continue;
        };
        if let Some(earlier) = last.get(&device).and_then(|&i| out.get_mut(i)).and_then(Option::take)
            && let StoreWrite::Presence { address: before, .. } = earlier
        {
            address = address.or(before);
        }
        last.insert(device.clone(), out.len());
        out.push(Some(StoreWrite::Presence {
            device,
            online,
            at_ms,
            address,
        }));
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(device: &str, online: bool, at_ms: u64, address: Option<&str>) -> StoreWrite {
        StoreWrite::Presence {
            device: device.into(),
            online,
            at_ms,
            address: address.map(Into::into),
        }
    }

    #[test]
    fn a_hundred_flaps_are_one_write_with_the_last_state_and_address() {
        let mut batch = vec![StoreWrite::Activated {
            device: "d&pk".into(),
            at_ms: 1,
        }];
        for i in 0..100 {
            batch.push(presence(
                "d&pk",
                true,
                10 + 2 * i,
                Some(if i == 42 { "10.0.0.42" } else { "10.0.0.1" }),
            ));
            batch.push(presence("e&pk", true, 10 + 2 * i, None));
            batch.push(presence("d&pk", false, 11 + 2 * i, None));
        }
        let out = coalesce_presence(batch);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            matches!(out[0], StoreWrite::Activated { .. }),
            "others keep their place"
        );
        assert_eq!(out[1], presence("e&pk", true, 208, None));
        assert_eq!(out[2], presence("d&pk", false, 209, Some("10.0.0.1")));
    }
}
