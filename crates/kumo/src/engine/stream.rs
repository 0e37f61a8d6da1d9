//! Response streaming: the bytes a runtime streams, handed to the caller as
//! they arrive instead of once the invocation has ended.
//!
//! A caller that can stream (a RESPONSE_STREAM function URL,
//! InvokeWithResponseStream) puts a [`StreamSender`] in its invoke request. If
//! the runtime answers in streaming mode, its Runtime API connection forwards
//! the stream through it part by part; the invocation itself (duration, logs,
//! metering) ends when the stream ends, as on Lambda. If the runtime answers
//! in one piece, nothing is sent and the caller uses the invocation's result.

use bytes::Bytes;
use tokio::sync::mpsc;

/// A few pieces in flight: a slow reader slows the runtime's upload rather
/// than filling the server's memory.
const PARTS_IN_FLIGHT: usize = 16;

/// One step of a streamed answer.
#[derive(Debug)]
pub enum StreamPart {
    /// The runtime started streaming (its `Content-Type`, if any), in this version.
    Start { content_type: Option<String>, executed_version: String },
    /// Bytes, in order.
    Data(Bytes),
    /// The stream ended as the runtime meant it to.
    End,
    /// The stream broke off: an error in the trailers, an oversized stream,
    /// or a runtime that went away mid-stream.
    Failed { error_type: String },
}

pub type StreamSender = mpsc::Sender<StreamPart>;
pub type StreamReceiver = mpsc::Receiver<StreamPart>;

/// A channel for one invocation's stream.
pub fn channel() -> (StreamSender, StreamReceiver) {
    mpsc::channel(PARTS_IN_FLIGHT)
}
