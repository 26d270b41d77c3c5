//! The libqb connection handshake on the setup socket: a 24-byte request
//! from the client, a 12 328-byte response from the server. Pure codec.
#![forbid(unsafe_code)]

pub const MSG_AUTHENTICATE: i32 = -1;
pub const MSG_DISCONNECT: i32 = -3;
pub const REQUEST_LEN: usize = 24;
pub const RESPONSE_LEN: usize = 12_328;
pub const PATH_MAX: usize = 4096;

const OFF_TYPE: usize = 24;
const OFF_MAX: usize = 28;
const OFF_CONNECTION: usize = 32;
const OFF_REQUEST: usize = 40;
const OFF_RESPONSE: usize = OFF_REQUEST + PATH_MAX;
const OFF_EVENT: usize = OFF_RESPONSE + PATH_MAX;

/// `connection_type` values.
pub const TYPE_SOCKET: i32 = 0;
pub const TYPE_SHM: i32 = 1;

fn put_i32(buf: &mut [u8], off: usize, v: i32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_i32(buf: &[u8], off: usize) -> i32 {
    i32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// The client's connection request.
pub fn encode_request(max_msg_size: u32) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    put_i32(&mut b, 0, MSG_AUTHENTICATE);
    put_i32(&mut b, 8, REQUEST_LEN as i32);
    b[16..20].copy_from_slice(&max_msg_size.max(RESPONSE_LEN as u32).to_le_bytes());
    b
}

/// A parsed connection request (server side).
pub fn decode_request(b: &[u8]) -> Option<u32> {
    if b.len() < REQUEST_LEN || get_i32(b, 0) != MSG_AUTHENTICATE {
        return None;
    }
    Some(u32::from_le_bytes([b[16], b[17], b[18], b[19]]))
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 0, or a negative errno refusing the connection.
    pub error: i32,
    pub connection_type: i32,
    pub max_msg_size: u32,
    pub request: String,
    pub response: String,
    pub event: String,
}

fn get_path(b: &[u8], off: usize) -> Option<String> {
    let field = &b[off..off + PATH_MAX];
    let end = field.iter().position(|&c| c == 0)?;
    String::from_utf8(field[..end].to_vec()).ok()
}

fn put_path(b: &mut [u8], off: usize, path: &str) {
    let n = path.len().min(PATH_MAX - 1);
    b[off..off + n].copy_from_slice(&path.as_bytes()[..n]);
}

/// Parses a response; `None` when it is not one.
pub fn decode_response(b: &[u8]) -> Option<Response> {
    if b.len() < RESPONSE_LEN || get_i32(b, 0) != MSG_AUTHENTICATE {
        return None;
    }
    let error = get_i32(b, 16);
    if error != 0 {
        return Some(Response {
            error,
            connection_type: -1,
            max_msg_size: 0,
            request: String::new(),
            response: String::new(),
            event: String::new(),
        });
    }
    Some(Response {
        error,
        connection_type: get_i32(b, OFF_TYPE),
        max_msg_size: u32::from_le_bytes([b[OFF_MAX], b[OFF_MAX + 1], b[OFF_MAX + 2], b[OFF_MAX + 3]]),
        request: get_path(b, OFF_REQUEST)?,
        response: get_path(b, OFF_RESPONSE)?,
        event: get_path(b, OFF_EVENT)?,
    })
}

/// Builds a response (server side). `connection` is an opaque token.
pub fn encode_response(r: &Response, connection: u64) -> Vec<u8> {
    let mut b = vec![0u8; RESPONSE_LEN];
    put_i32(&mut b, 0, MSG_AUTHENTICATE);
    put_i32(&mut b, 8, RESPONSE_LEN as i32);
    put_i32(&mut b, 16, r.error);
    if r.error == 0 {
        put_i32(&mut b, OFF_TYPE, r.connection_type);
        b[OFF_MAX..OFF_MAX + 4].copy_from_slice(&r.max_msg_size.to_le_bytes());
        b[OFF_CONNECTION..OFF_CONNECTION + 8].copy_from_slice(&connection.to_le_bytes());
        put_path(&mut b, OFF_REQUEST, &r.request);
        put_path(&mut b, OFF_RESPONSE, &r.response);
        put_path(&mut b, OFF_EVENT, &r.event);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_match_libcpg() {
        let want = [
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0,
        ];
        assert_eq!(encode_request(1 << 20), want);
        assert_eq!(decode_request(&want), Some(1 << 20));
        // Small requests grow to the response size, as libqb does.
        assert_eq!(decode_request(&encode_request(100)), Some(12_328));
    }

    #[test]
    fn response_round_trip() {
        let r = Response {
            error: 0,
            connection_type: TYPE_SHM,
            max_msg_size: 1 << 20,
            request: "/dev/shm/qb-1-2-3-abcdef/qb-request-cpg".into(),
            response: "/dev/shm/qb-1-2-3-abcdef/qb-response-cpg".into(),
            event: "/dev/shm/qb-1-2-3-abcdef/qb-event-cpg".into(),
        };
        let b = encode_response(&r, 0x55aa);
        assert_eq!(b.len(), RESPONSE_LEN);
        assert_eq!(&b[8..12], &[0x28, 0x30, 0, 0]);
        assert_eq!(decode_response(&b), Some(r));
    }

    #[test]
    fn refusal_and_garbage() {
        let refused = Response {
            error: -libc::EACCES,
            connection_type: -1,
            max_msg_size: 0,
            request: String::new(),
            response: String::new(),
            event: String::new(),
        };
        let b = encode_response(&refused, 0);
        assert_eq!(decode_response(&b).unwrap().error, -13);
        assert_eq!(decode_response(&b[..100]), None);
        let mut junk = vec![0xffu8; RESPONSE_LEN];
        junk[16..20].copy_from_slice(&0i32.to_le_bytes());
        // Paths without a terminating NUL are refused.
        assert_eq!(decode_response(&junk), None);
    }
}
