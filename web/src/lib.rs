//! Web services that use odm, as examples a user copies. The code is in
//! `examples/`: `green_api.rs` serves a small JSON API on the green HTTP
//! server (`may_minihttp`) with its handlers on a bounded
//! [`GreenPool`](https://docs.rs/green-runtime), `axum_api.rs` serves the
//! same endpoints from axum by awaiting `Submitted`, and `todos/` holds the
//! domain both share (the model, validation and the endpoints as plain
//! synchronous odm code). `tests/` runs both under a short load. This
//! library itself is empty: a package needs one target besides examples.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
