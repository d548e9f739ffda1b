//! Workhorse framing conformance: every case of
//! `tests/fixtures/terminal/wrappers-cases.json` through `wrap_read` /
//! `wrap_write`, plus never-panic properties of the server codec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use termgate::terminal::*;

/// The repo's `tests/fixtures`.
fn fixtures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn kind(code: u64) -> FrameKind {
    match code {
        1 => FrameKind::Text,
        2 => FrameKind::Binary,
        n => FrameKind::Other(n as u16),
    }
}

#[test]
fn workhorse_wrapper_cases() {
    let text =
        std::fs::read_to_string(fixtures_dir().join("terminal/wrappers-cases.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 32);
    let mut checked = 0;
    for c in cases {
        // Cases with an underlying connection error assert that Workhorse
        // hands the frame back untouched with the error: the wrapper is not
        // involved, so there is nothing of ours to run.
        if c["underlying_error"].as_bool().unwrap() {
            continue;
        }
        let proto = c["subprotocol"].as_str().unwrap();
        let input = Frame {
            kind: kind(c["frame_type_code"].as_u64().unwrap()),
            payload: hex::decode(c["payload_hex"].as_str().unwrap()).unwrap(),
        };
        let want = Frame {
            kind: kind(c["expected_frame_type_code"].as_u64().unwrap()),
            payload: hex::decode(c["expected_hex"].as_str().unwrap()).unwrap(),
        };
        let got = match c["direction"].as_str().unwrap() {
            "read" => wrap_read(proto, input).unwrap(),
            "write" => wrap_write(proto, input),
            d => panic!("direction {d}"),
        };
        assert_eq!(got, want, "{}", c["note"]);
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn server_codec_matches_workhorse_for_gitlab_protocols() {
    // What Workhorse writes towards the runner decodes to the same bytes.
    for proto in [TERMINAL_GITLAB, BASE64_TERMINAL_GITLAB] {
        let codec = ServerCodec::new(Protocol::from_name(proto).unwrap());
        let f = wrap_write(proto, Frame::binary(b"echo hi\n".to_vec()));
        assert_eq!(
            codec.decode(f.kind, &f.payload).unwrap(),
            Incoming::Input(b"echo hi\n".to_vec())
        );
        // And what the runner sends reads back as raw output.
        let out = codec.encode_output(b"\x1b[0mhi\r\n");
        assert_eq!(wrap_read(proto, out).unwrap().payload, b"\x1b[0mhi\r\n");
    }
}

proptest! {
    #[test]
    fn fuzz_decode_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..200), code in 0u16..4) {
        for p in [Protocol::Terminal, Protocol::Base64Terminal, Protocol::K8sChannel] {
            let _ = ServerCodec::new(p).decode(kind(code as u64), &payload);
        }
        for proto in [TERMINAL_GITLAB, BASE64_TERMINAL_GITLAB, CHANNEL_K8S, BASE64_CHANNEL_K8S, "x"] {
            let _ = wrap_read(proto, Frame { kind: kind(code as u64), payload: payload.clone() });
        }
    }

    #[test]
    fn fuzz_output_round_trips(len in 0usize..100_000, pattern in proptest::collection::vec(any::<u8>(), 1..64)) {
        let data: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
        for p in [Protocol::Terminal, Protocol::Base64Terminal, Protocol::K8sChannel] {
            let codec = ServerCodec::new(p);
            let mut back = Vec::new();
            for f in codec.encode_output_chunks(&data) {
                let raw = wrap_read(p.name(), f).unwrap();
                back.extend(raw.payload);
            }
            prop_assert_eq!(&back, &data);
        }
    }
}
