//! JSON-RPC and MCP error codes the hub emits. Spec codes first, then the hub's own.

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (also: unknown tool, bad cursor).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Resource not found (2025-11-25 and earlier).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// Generic server error used by the MCP SDKs and by the hub for "busy", "rate limited",
/// "server unavailable" and "server restarted"; `data` says what to do.
pub const SERVER_ERROR: i64 = -32000;
/// Request timed out (the TypeScript SDK uses the same code); `data.layer` names the layer.
pub const REQUEST_TIMEOUT: i64 = -32001;
