//! The wire vocabulary shared by every actor: the JSON-RPC envelope (parsed shallowly, the
//! rest kept as raw JSON), MCP method names and protocol versions, and error codes.

pub mod codes;
pub mod input_key;
pub mod jsonrpc;
pub mod modern;
pub mod version;

pub use jsonrpc::{Id, Message, RpcError};
