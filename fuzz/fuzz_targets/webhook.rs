//! A webhook delivery from the network: signature header and body are both
//! attacker-controlled. Checks that verification and parsing never panic,
//! that only the right signature is accepted, and that every event name
//! cairn acts on is exercised with a body that passed verification.
#![no_main]

use cairn::triggers::{parse_event, verify_signature, WebhookSecret};
use libfuzzer_sys::fuzz_target;

const EVENTS: [&str; 6] = [
    "push",
    "issue_comment",
    "pull_request",
    "ping",
    "installation",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let secret = WebhookSecret::new(b"fuzz-secret").unwrap();
    // The first line of the rest is the header as sent; the remainder the body.
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let header = std::str::from_utf8(header).ok();
    let good = secret.sign(body);
    if verify_signature(&secret, body, header).is_ok() {
        // Only the one right MAC (hex in either case) passes.
        assert!(header.unwrap().eq_ignore_ascii_case(&good));
    }
    assert!(verify_signature(&secret, body, Some(&good)).is_ok());

    let event = EVENTS[usize::from(selector) % EVENTS.len()];
    match parse_event(event, body) {
        Ok(parsed) => {
            if !event.is_empty() {
                assert_eq!(parsed.name(), event);
            }
        }
        Err(e) => {
            // Errors become 400 bodies: they must render.
            let _ = e.to_string();
        }
    }
});
