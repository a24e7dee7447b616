//! Fuzz target: any bytes fed to the CommerceML reader must give items or an error, never a
//! panic, a hang or unbounded memory. Also tries small limits, so the limit paths are reached.
#![no_main]

use kontor_commerceml::{Limits, Reader};
use libfuzzer_sys::fuzz_target;

fn read_through(data: &[u8], limits: Limits) {
    let Ok(mut reader) = Reader::with_limits(data, limits) else {
        return;
    };
    // Each item consumes input: more items than bytes would mean the reader does not advance.
    for _ in 0..=data.len() + 1 {
        match reader.next_item() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the reader did not stop");
}

fuzz_target!(|data: &[u8]| {
    read_through(data, Limits::default());
    read_through(
        data,
        Limits {
            max_depth: 8,
            max_value_bytes: 64,
            max_record_elements: 16,
            max_record_bytes: 128,
        },
    );
});
