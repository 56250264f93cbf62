//! Credentials on the wire: every RPC, from drivers and between nodes, carries
//! one (the node credential, the admin's or a tenant's) as gRPC metadata
//! `authorization: Bearer <token>`; servers reject calls without it.

use std::sync::Arc;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata key that carries the token.
pub const TOKEN_KEY: &str = "authorization";

/// Bytes of randomness in a generated token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// A fresh random token (hex), from the kernel's random source.
pub fn generate_token() -> std::io::Result<String> {
    let bytes = random_bytes(TOKEN_BYTES)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `n` bytes from the kernel's random source (tokens, session keys).
pub fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Checks that a token is usable in a header: printable ASCII, no spaces.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the cluster token is empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the cluster token must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// Server side: rejects requests whose token is missing or wrong.
#[derive(Clone)]
pub struct CheckToken {
    expected: Arc<[u8]>,
}

impl CheckToken {
    pub fn new(token: &str) -> Self {
        CheckToken {
            expected: format!("Bearer {token}").into_bytes().into(),
        }
    }

    /// Whether `header` (the whole `authorization` value) carries the token.
    pub fn accepts(&self, header: &[u8]) -> bool {
        constant_time_eq(header, &self.expected)
    }
}

impl Interceptor for CheckToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get(TOKEN_KEY) {
            Some(value) if self.accepts(value.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong cluster token")),
            None => Err(Status::unauthenticated(
                "missing cluster token (metadata `authorization: Bearer <token>`)",
            )),
        }
    }
}

/// Client side: adds the token to every request.
#[derive(Clone)]
pub struct AttachToken {
    value: MetadataValue<Ascii>,
}

impl AttachToken {
    pub fn new(token: &str) -> Result<Self, String> {
        validate_token(token)?;
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the cluster token is not a valid header value".to_string())?;
        Ok(AttachToken { value })
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert(TOKEN_KEY, self.value.clone());
        Ok(request)
    }
}

/// Compares without an early exit, so response time does not leak a prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a client finds the token of the node at `address` when it was not
/// given one: `$REEF_TOKEN`, the file `$REEF_TOKEN_FILE`, else the token file a
/// node on this machine wrote in its default data directory
/// (`/tmp/reef/node-<port>/token`).
pub fn find_token(address: &str) -> Result<String, String> {
    if let Ok(token) = std::env::var("REEF_TOKEN") {
        return Ok(token.trim().to_string());
    }
    if let Some(path) = std::env::var_os("REEF_TOKEN_FILE") {
        return read_token_file(std::path::Path::new(&path));
    }
    let port = address
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    if let Some(port) = port {
        let path = std::path::PathBuf::from(format!("/tmp/reef/node-{port}/token"));
        if path.exists() {
            return read_token_file(&path);
        }
    }
    Err(format!(
        "no cluster token for {address}: set REEF_TOKEN or REEF_TOKEN_FILE \
         (the head node writes its token to <data-dir>/token)"
    ))
}

/// Reads a token file (surrounding whitespace ignored).
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let token = std::fs::read_to_string(path)
        .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
    let token = token.trim().to_string();
    validate_token(&token).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

/// A gRPC channel whose requests carry the token.
pub type TokenChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AttachToken>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_interceptors() {
        let token = generate_token().unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        let mut attach = AttachToken::new(&token).unwrap();
        let mut check = CheckToken::new(&token);
        assert!(check.call(attach.call(Request::new(())).unwrap()).is_ok());
        let mut other = AttachToken::new("not-the-token").unwrap();
        let err = check
            .call(other.call(Request::new(())).unwrap())
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let err = check.call(Request::new(())).unwrap_err();
        assert!(err.message().contains("missing"), "{err}");
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert!(validate_token("").is_err());
        assert!(validate_token("a b").is_err());
        assert!(AttachToken::new("x\n").is_err());
    }
}
