//! The interactive terminal's WebSocket wire protocol, as GitLab Workhorse
//! and gitlab-runner speak it, plus Kubernetes' channel framing for clients
//! that want to resize. Pure data transformations, no I/O.
//!
//! Two views:
//! - [`ServerCodec`]: the runner's session server. Decodes what a client
//!   sends ([`Incoming`]) and encodes terminal output for it.
//! - [`wrap_read`]/[`wrap_write`]: Workhorse's `wrappers.go` — how a proxy
//!   turns frames of a client subprotocol into raw terminal bytes and back.

use base64::Engine as _;

/// `terminal.gitlab.com`: binary frames of raw bytes.
pub const TERMINAL_GITLAB: &str = "terminal.gitlab.com";
/// `base64.terminal.gitlab.com`: text frames of padded standard base64.
pub const BASE64_TERMINAL_GITLAB: &str = "base64.terminal.gitlab.com";
/// Kubernetes remotecommand v4 framing (channel byte first).
pub const V4_CHANNEL_K8S: &str = "v4.channel.k8s.io";
/// Kubernetes channel framing (as Workhorse speaks it towards the kube API).
pub const CHANNEL_K8S: &str = "channel.k8s.io";
/// Kubernetes base64 channel framing.
pub const BASE64_CHANNEL_K8S: &str = "base64.channel.k8s.io";

/// Subprotocols the session server offers, in preference order (the first
/// one the client offered in this list wins, as gorilla's upgrader does with
/// the server's list).
pub const SERVER_SUBPROTOCOLS: [&str; 4] = [
    TERMINAL_GITLAB,
    BASE64_TERMINAL_GITLAB,
    V4_CHANNEL_K8S,
    CHANNEL_K8S,
];

/// Largest frame the runner sends (gitlab-runner copies with 32 KiB buffers).
pub const MAX_OUTPUT_FRAME: usize = 32 * 1024;
/// Default largest input one client frame may carry (`[session_server]
/// max_input_frame`): 1 MiB. xterm.js sends a whole paste as one frame, so
/// this is the largest paste that reaches the terminal; a frame over the
/// limit closes the connection with `frame_too_large` (upstream silently
/// truncates at 32 KiB). The limit counts *decoded* input bytes, so the same
/// paste fits in every subprotocol; see [`max_wire_frame`] for the frame
/// size that allows.
pub const DEFAULT_MAX_INPUT_FRAME: usize = 1024 * 1024;
/// End of transmission: what Workhorse sends upstream when the browser leaves.
pub const EOT: u8 = 0x04;
/// Read buffer of a WebSocket *client* of a session (a Workhorse proxy, the
/// bench). tungstenite zero-fills its whole read buffer before every read,
/// and its default is 128 KiB: with that default, clearing memory was a
/// third of a client's CPU per keystroke echo. Larger frames still arrive
/// whole: the buffer grows to the frame being read. The runner's
/// `session::bridge::CLIENT_READ_BUFFER` is the same figure.
pub const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// Kubernetes channel numbers.
pub mod channel {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const ERROR: u8 = 3;
    pub const RESIZE: u8 = 4;
}

/// WebSocket data frame kinds (RFC 6455 opcodes 1 and 2); anything else is
/// `Other` and passes through the wrappers untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
    Other(u16),
}

/// A data frame: kind and payload bytes (text frames carry UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn binary(payload: Vec<u8>) -> Self {
        Frame {
            kind: FrameKind::Binary,
            payload,
        }
    }
    pub fn text(payload: Vec<u8>) -> Self {
        Frame {
            kind: FrameKind::Text,
            payload,
        }
    }
}

/// What a client frame means to the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Bytes for the terminal's input.
    Input(Vec<u8>),
    /// New terminal size (columns, rows).
    Resize { cols: u16, rows: u16 },
    /// Nothing to do (e.g. a k8s frame on a channel we ignore).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {size} bytes is larger than the {limit} byte limit")]
    FrameTooLarge { size: usize, limit: usize },
    #[error("invalid base64 in a {protocol} frame")]
    InvalidBase64 { protocol: &'static str },
    #[error("invalid resize message: {0}")]
    InvalidResize(String),
    #[error("empty frame on a channel protocol")]
    MissingChannel,
}

/// The subprotocols a session server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Terminal,
    Base64Terminal,
    /// `v4.channel.k8s.io` or `channel.k8s.io`.
    K8sChannel,
}

impl Protocol {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            TERMINAL_GITLAB => Some(Protocol::Terminal),
            BASE64_TERMINAL_GITLAB => Some(Protocol::Base64Terminal),
            V4_CHANNEL_K8S | CHANNEL_K8S => Some(Protocol::K8sChannel),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Terminal => TERMINAL_GITLAB,
            Protocol::Base64Terminal => BASE64_TERMINAL_GITLAB,
            Protocol::K8sChannel => V4_CHANNEL_K8S,
        }
    }

    pub fn can_resize(self) -> bool {
        self == Protocol::K8sChannel
    }
}

/// Pick the subprotocol from a client's `Sec-WebSocket-Protocol` offers:
/// the first of the server's list that the client offered. `None` when the
/// client offered none the server speaks (upstream then speaks unwrapped
/// binary, which is `terminal.gitlab.com` framing without the header).
pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered.into_iter().map(str::trim).collect();
    SERVER_SUBPROTOCOLS
        .iter()
        .copied()
        .find(|p| offered.contains(p))
}

/// The largest WebSocket frame (payload bytes) that can carry
/// `max_input` bytes of input in any subprotocol: base64 makes 3 bytes 4,
/// and the k8s framings add a channel byte. The session server refuses
/// larger frames while reading them (nothing is buffered), and
/// [`ServerCodec::decode`] refuses frames within it whose input is larger
/// than `max_input`.
pub fn max_wire_frame(max_input: usize) -> usize {
    max_input.div_ceil(3).saturating_mul(4).saturating_add(1)
}

/// The session server's codec for one connection.
#[derive(Debug, Clone, Copy)]
pub struct ServerCodec {
    pub protocol: Protocol,
    /// Largest input (decoded bytes) one frame may carry.
    pub max_input: usize,
}

impl ServerCodec {
    /// A codec with the default input limit, [`DEFAULT_MAX_INPUT_FRAME`].
    pub fn new(protocol: Protocol) -> Self {
        ServerCodec {
            protocol,
            max_input: DEFAULT_MAX_INPUT_FRAME,
        }
    }

    /// The same codec accepting up to `max_input` input bytes a frame.
    pub fn with_max_input(self, max_input: usize) -> Self {
        ServerCodec { max_input, ..self }
    }

    /// Decode a frame the client sent. Input of more than `max_input`
    /// bytes (after decoding), or a frame larger than
    /// [`max_wire_frame`] allows, is [`ProtocolError::FrameTooLarge`].
    pub fn decode(&self, kind: FrameKind, payload: &[u8]) -> Result<Incoming, ProtocolError> {
        let wire_limit = max_wire_frame(self.max_input);
        if payload.len() > wire_limit {
            return Err(ProtocolError::FrameTooLarge {
                size: payload.len(),
                limit: wire_limit,
            });
        }
        if matches!(kind, FrameKind::Other(_)) {
            return Ok(Incoming::Ignore);
        }
        let input = match self.protocol {
            // Both wrappers accept text and binary alike.
            Protocol::Terminal => payload.to_vec(),
            Protocol::Base64Terminal => decode_b64(payload, BASE64_TERMINAL_GITLAB)?,
            Protocol::K8sChannel => {
                let (&ch, rest) = payload.split_first().ok_or(ProtocolError::MissingChannel)?;
                match ch {
                    channel::STDIN => rest.to_vec(),
                    channel::RESIZE => return parse_resize(rest),
                    _ => return Ok(Incoming::Ignore),
                }
            }
        };
        if input.len() > self.max_input {
            return Err(ProtocolError::FrameTooLarge {
                size: input.len(),
                limit: self.max_input,
            });
        }
        Ok(Incoming::Input(input))
    }

    /// Encode terminal output (at most [`MAX_OUTPUT_FRAME`] bytes a call;
    /// use [`ServerCodec::encode_output_chunks`] for more).
    pub fn encode_output(&self, data: &[u8]) -> Frame {
        match self.protocol {
            Protocol::Terminal => Frame::binary(data.to_vec()),
            Protocol::Base64Terminal => Frame::text(
                base64::engine::general_purpose::STANDARD
                    .encode(data)
                    .into_bytes(),
            ),
            Protocol::K8sChannel => {
                let mut p = Vec::with_capacity(data.len() + 1);
                p.push(channel::STDOUT);
                p.extend_from_slice(data);
                Frame::binary(p)
            }
        }
    }

    /// Output split into frames of at most [`MAX_OUTPUT_FRAME`] data bytes.
    pub fn encode_output_chunks(&self, data: &[u8]) -> Vec<Frame> {
        data.chunks(MAX_OUTPUT_FRAME)
            .map(|c| self.encode_output(c))
            .collect()
    }

    /// A one-line status message for the client (k8s: the error channel,
    /// others: plain output). Used for the close banner.
    pub fn encode_status(&self, line: &str) -> Frame {
        match self.protocol {
            Protocol::K8sChannel => {
                let mut p = vec![channel::ERROR];
                p.extend_from_slice(line.as_bytes());
                Frame::binary(p)
            }
            _ => self.encode_output(line.as_bytes()),
        }
    }
}

fn decode_b64(payload: &[u8], protocol: &'static str) -> Result<Vec<u8>, ProtocolError> {
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|_| ProtocolError::InvalidBase64 { protocol })
}

/// `{"Width":W,"Height":H}` (Kubernetes' TerminalSize).
fn parse_resize(json: &[u8]) -> Result<Incoming, ProtocolError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let s: Size =
        serde_json::from_slice(json).map_err(|e| ProtocolError::InvalidResize(e.to_string()))?;
    if s.width == 0 || s.height == 0 {
        return Err(ProtocolError::InvalidResize("zero width or height".into()));
    }
    Ok(Incoming::Resize {
        cols: s.width,
        rows: s.height,
    })
}

/// A k8s resize frame (client side), `{"Width":W,"Height":H}` on channel 4.
pub fn k8s_resize_frame(cols: u16, rows: u16) -> Frame {
    let mut p = vec![channel::RESIZE];
    p.extend_from_slice(format!("{{\"Width\":{cols},\"Height\":{rows}}}").as_bytes());
    Frame::binary(p)
}

/// A k8s stdin frame (client side).
pub fn k8s_stdin_frame(data: &[u8]) -> Frame {
    let mut p = vec![channel::STDIN];
    p.extend_from_slice(data);
    Frame::binary(p)
}

/// Workhorse's `ReadMessage` wrapper: a frame read from a peer speaking
/// `subprotocol`, turned into raw terminal bytes (a binary frame).
/// Non-data frames and unknown subprotocols pass through unchanged.
pub fn wrap_read(subprotocol: &str, frame: Frame) -> Result<Frame, ProtocolError> {
    if matches!(frame.kind, FrameKind::Other(_)) {
        return Ok(frame);
    }
    let payload = match subprotocol {
        TERMINAL_GITLAB => frame.payload,
        BASE64_TERMINAL_GITLAB => decode_b64(&frame.payload, BASE64_TERMINAL_GITLAB)?,
        CHANNEL_K8S | V4_CHANNEL_K8S => frame
            .payload
            .get(1..)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        BASE64_CHANNEL_K8S => decode_b64(
            frame.payload.get(1..).unwrap_or_default(),
            BASE64_CHANNEL_K8S,
        )?,
        _ => return Ok(frame),
    };
    Ok(Frame::binary(payload))
}

/// Workhorse's `WriteMessage` wrapper: raw terminal bytes to be sent to a
/// peer speaking `subprotocol` (stdin channel for the k8s framings).
pub fn wrap_write(subprotocol: &str, frame: Frame) -> Frame {
    if matches!(frame.kind, FrameKind::Other(_)) {
        return frame;
    }
    let b64 = |p: &[u8]| base64::engine::general_purpose::STANDARD.encode(p);
    match subprotocol {
        TERMINAL_GITLAB => Frame::binary(frame.payload),
        BASE64_TERMINAL_GITLAB => Frame::text(b64(&frame.payload).into_bytes()),
        CHANNEL_K8S | V4_CHANNEL_K8S => k8s_stdin_frame(&frame.payload),
        BASE64_CHANNEL_K8S => Frame::text(format!("0{}", b64(&frame.payload)).into_bytes()),
        _ => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_the_server_order() {
        assert_eq!(
            negotiate(["base64.terminal.gitlab.com", "terminal.gitlab.com"]),
            Some(TERMINAL_GITLAB)
        );
        assert_eq!(negotiate(["v4.channel.k8s.io"]), Some(V4_CHANNEL_K8S));
        assert_eq!(negotiate(["x"]), None);
    }

    #[test]
    fn k8s_channels() {
        let c = ServerCodec::new(Protocol::K8sChannel);
        assert_eq!(
            c.decode(FrameKind::Binary, b"\x00ls\n").unwrap(),
            Incoming::Input(b"ls\n".to_vec())
        );
        assert_eq!(
            c.decode(FrameKind::Binary, b"\x04{\"Width\":120,\"Height\":40}")
                .unwrap(),
            Incoming::Resize {
                cols: 120,
                rows: 40
            }
        );
        assert!(c.decode(FrameKind::Binary, b"\x04{bad").is_err());
        assert!(c.decode(FrameKind::Binary, b"").is_err());
        assert_eq!(
            c.decode(FrameKind::Binary, b"\x02x").unwrap(),
            Incoming::Ignore
        );
        assert_eq!(c.encode_output(b"hi").payload, b"\x01hi");
        let f = k8s_resize_frame(80, 24);
        assert_eq!(
            c.decode(f.kind, &f.payload).unwrap(),
            Incoming::Resize { cols: 80, rows: 24 }
        );
    }

    #[test]
    fn base64_terminal() {
        let c = ServerCodec::new(Protocol::Base64Terminal);
        assert_eq!(
            c.decode(FrameKind::Text, b"Zm9vIGJhcg==").unwrap(),
            Incoming::Input(b"foo bar".to_vec())
        );
        assert!(c.decode(FrameKind::Text, b"!!!").is_err());
        let f = c.encode_output(b"foo bar");
        assert_eq!(
            (f.kind, f.payload),
            (FrameKind::Text, b"Zm9vIGJhcg==".to_vec())
        );
    }

    #[test]
    fn limits() {
        let c = ServerCodec::new(Protocol::Terminal);
        let big = vec![b'a'; DEFAULT_MAX_INPUT_FRAME + 1];
        assert_eq!(
            c.decode(FrameKind::Binary, &big),
            Err(ProtocolError::FrameTooLarge {
                size: DEFAULT_MAX_INPUT_FRAME + 1,
                limit: DEFAULT_MAX_INPUT_FRAME
            })
        );
        // A paste of exactly the limit is input, in every subprotocol.
        let paste = vec![b'p'; DEFAULT_MAX_INPUT_FRAME];
        for p in [
            Protocol::Terminal,
            Protocol::Base64Terminal,
            Protocol::K8sChannel,
        ] {
            let f = wrap_write(p.name(), Frame::binary(paste.clone()));
            assert!(f.payload.len() <= max_wire_frame(DEFAULT_MAX_INPUT_FRAME));
            assert_eq!(
                ServerCodec::new(p).decode(f.kind, &f.payload),
                Ok(Incoming::Input(paste.clone())),
                "{p:?}"
            );
        }
        // The limit is the decoded input: base64 of limit + 1 bytes is
        // refused even though the frame itself fits.
        let b64 = ServerCodec::new(Protocol::Base64Terminal).with_max_input(5);
        assert_eq!(max_wire_frame(5), 9);
        assert_eq!(
            b64.decode(FrameKind::Text, b"YWJjZGVm"),
            Err(ProtocolError::FrameTooLarge { size: 6, limit: 5 })
        );
        assert_eq!(
            b64.decode(FrameKind::Text, b"YWJjZA=="),
            Ok(Incoming::Input(b"abcd".to_vec()))
        );
        let k8s = ServerCodec::new(Protocol::K8sChannel).with_max_input(3);
        assert_eq!(
            k8s.decode(FrameKind::Binary, b"\x00abc"),
            Ok(Incoming::Input(b"abc".to_vec()))
        );
        assert_eq!(
            k8s.decode(FrameKind::Binary, b"\x00abcd"),
            Err(ProtocolError::FrameTooLarge { size: 4, limit: 3 })
        );
        // Beyond the wire limit, refused before decoding.
        assert_eq!(
            k8s.decode(FrameKind::Binary, &[0u8; 6]),
            Err(ProtocolError::FrameTooLarge { size: 6, limit: 5 })
        );
        let frames = c.encode_output_chunks(&vec![0u8; MAX_OUTPUT_FRAME * 2 + 1]);
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.payload.len() <= MAX_OUTPUT_FRAME));
    }
}

/// Property tests (issue 20, item 7): every decoder facing a client never
/// panics, encoders round-trip, limits hold. `PROPTEST_CASES` sets the
/// number of cases (default 256); `scripts/fuzz-long.sh` runs them long.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn any_kind() -> impl Strategy<Value = FrameKind> {
        prop_oneof![
            Just(FrameKind::Text),
            Just(FrameKind::Binary),
            any::<u16>().prop_map(FrameKind::Other),
        ]
    }

    fn any_protocol() -> impl Strategy<Value = Protocol> {
        prop_oneof![
            Just(Protocol::Terminal),
            Just(Protocol::Base64Terminal),
            Just(Protocol::K8sChannel),
        ]
    }

    /// Payloads that look like what each subprotocol carries, and noise.
    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            "[A-Za-z0-9+/=]{0,200}".prop_map(String::into_bytes),
            (0u8..6, "[ -~]{0,80}").prop_map(|(c, s)| {
                let mut p = vec![c];
                p.extend(s.into_bytes());
                p
            }),
        ]
    }

    /// A resize body: valid JSON with odd values, or mangled JSON.
    fn resize_json() -> impl Strategy<Value = String> {
        let num = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..70_000).prop_map(|n| n.to_string()),
            Just("1e3".to_string()),
            Just("-0".to_string()),
            Just("null".to_string()),
            Just("\"80\"".to_string()),
            Just("1.5".to_string()),
        ];
        prop_oneof![
            (num.clone(), num).prop_map(|(w, h)| format!("{{\"Width\":{w},\"Height\":{h}}}")),
            "[{}\":,A-Za-z0-9 ]{0,60}",
            "\\PC{0,40}",
        ]
    }

    proptest! {
        /// Any frame, any protocol, any limit: a value or an error.
        #[test]
        fn fuzz_server_decode_never_panics(
            p in any_protocol(),
            kind in any_kind(),
            payload in payload(),
            max in 0usize..700,
        ) {
            let c = ServerCodec::new(p).with_max_input(max);
            match c.decode(kind, &payload) {
                Ok(Incoming::Input(data)) => prop_assert!(data.len() <= max),
                Ok(_) => {}
                Err(ProtocolError::FrameTooLarge { size, limit }) => prop_assert!(size > limit),
                Err(_) => {}
            }
        }

        /// What a client (Workhorse's `wrap_write`) sends decodes to the
        /// bytes it meant, exactly when they fit the limit.
        #[test]
        fn fuzz_client_input_round_trips(
            p in any_protocol(),
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            max in 1usize..2500,
        ) {
            let f = wrap_write(p.name(), Frame::binary(data.clone()));
            prop_assert!(f.payload.len() <= max_wire_frame(data.len()));
            let got = ServerCodec::new(p).with_max_input(max).decode(f.kind, &f.payload);
            if data.len() <= max {
                prop_assert_eq!(got, Ok(Incoming::Input(data)));
            } else {
                let too_large = matches!(got, Err(ProtocolError::FrameTooLarge { .. }));
                prop_assert!(too_large, "{:?}", got);
            }
        }

        /// Workhorse's wrappers: reading what was written gives the raw
        /// bytes back, in every subprotocol; reading never panics.
        #[test]
        fn fuzz_wrappers_round_trip(
            proto in prop::sample::select(vec![TERMINAL_GITLAB, BASE64_TERMINAL_GITLAB, CHANNEL_K8S, V4_CHANNEL_K8S, BASE64_CHANNEL_K8S]),
            data in proptest::collection::vec(any::<u8>(), 0..1000),
            kind in any_kind(),
            noise in payload(),
        ) {
            let back = wrap_read(proto, wrap_write(proto, Frame::binary(data.clone())));
            prop_assert_eq!(back, Ok(Frame::binary(data)));
            let _ = wrap_read(proto, Frame { kind, payload: noise.clone() });
            let _ = wrap_read("x", Frame { kind, payload: noise });
        }

        /// Output frames carry the bytes back through a client's reader, at
        /// most MAX_OUTPUT_FRAME data bytes a frame.
        #[test]
        fn fuzz_output_chunks_round_trip(
            p in any_protocol(),
            len in 0..(3 * MAX_OUTPUT_FRAME),
            pattern in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            // Long outputs from a short random pattern: generating each
            // byte separately would make most of the time go to proptest.
            let data: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
            let c = ServerCodec::new(p);
            let mut back = Vec::new();
            for f in c.encode_output_chunks(&data) {
                let raw = wrap_read(p.name(), f).unwrap_or_else(|e| panic!("{e}"));
                prop_assert!(raw.payload.len() <= MAX_OUTPUT_FRAME);
                back.extend(raw.payload);
            }
            prop_assert_eq!(back, data);
        }

        /// The k8s resize JSON: any body is a size or an error; a size is
        /// never zero; the client's encoder round-trips every nonzero size.
        #[test]
        fn fuzz_k8s_resize(json in resize_json(), cols in 0u16..=u16::MAX, rows in 0u16..=u16::MAX) {
            let c = ServerCodec::new(Protocol::K8sChannel);
            let mut frame = vec![channel::RESIZE];
            frame.extend(json.as_bytes());
            match c.decode(FrameKind::Binary, &frame) {
                Ok(Incoming::Resize { cols, rows }) => prop_assert!(cols > 0 && rows > 0),
                Ok(other) => prop_assert!(false, "resize frame decoded to {:?}", other),
                Err(e) => prop_assert!(matches!(e, ProtocolError::InvalidResize(_)), "{e}"),
            }
            let f = k8s_resize_frame(cols, rows);
            let got = c.decode(f.kind, &f.payload);
            if cols == 0 || rows == 0 {
                prop_assert!(got.is_err());
            } else {
                prop_assert_eq!(got, Ok(Incoming::Resize { cols, rows }));
            }
        }

        /// Negotiation picks one of the server's subprotocols that the
        /// client offered, the first in the server's order, or none.
        #[test]
        fn fuzz_negotiate(offered in proptest::collection::vec(
            prop_oneof![
                prop::sample::select(SERVER_SUBPROTOCOLS.to_vec()).prop_map(|s| format!(" {s} ")),
                "\\PC{0,20}",
            ],
            0..6,
        )) {
            let got = negotiate(offered.iter().map(String::as_str));
            let trimmed: Vec<&str> = offered.iter().map(|s| s.trim()).collect();
            match got {
                Some(p) => {
                    prop_assert!(trimmed.contains(&p));
                    let pos = SERVER_SUBPROTOCOLS.iter().position(|s| *s == p).unwrap_or(usize::MAX);
                    prop_assert!(SERVER_SUBPROTOCOLS[..pos].iter().all(|s| !trimmed.contains(s)));
                    prop_assert!(Protocol::from_name(p).is_some());
                }
                None => prop_assert!(SERVER_SUBPROTOCOLS.iter().all(|s| !trimmed.contains(s))),
            }
        }
    }
}
