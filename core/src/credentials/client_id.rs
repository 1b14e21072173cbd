//! The MQTT client id grammar shared by both dialects (PROTOCOL.md §2.2):
//! `identity-part "|" param-list "|"`.

use super::CredentialError;

/// The longest MQTT client id accepted, in bytes (PROTOCOL.md L1).
pub const MAX_CLIENT_ID_LEN: usize = 256;
/// The longest identity part accepted, in bytes.
pub const MAX_IDENTITY_PART_LEN: usize = 160;
/// The most `key=value` items accepted.
pub const MAX_PARAMS: usize = 16;
/// The longest parameter key accepted, in bytes.
pub const MAX_PARAM_KEY_LEN: usize = 32;
/// The longest parameter value accepted, in bytes.
pub const MAX_PARAM_VALUE_LEN: usize = 64;

/// A parsed client id: the identity part and the parameters, borrowed from
/// the input. Parameters are kept as byte offsets into the input (16 bytes
/// each), so parsing never allocates and the value stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId<'a> {
    /// Everything before the first `|`; also the signed `clientId` value.
    pub identity_part: &'a str,
    text: &'a str,
    params: [Span; MAX_PARAMS],
    param_count: usize,
}

/// Offsets of one `key=value` item in the client id: key start and end,
/// value start and end.
type Span = [u16; 4];

impl<'a> ClientId<'a> {
    /// Parses a client id. Keys compare case-insensitively, values are kept
    /// byte for byte after trimming spaces and tabs, unknown keys are kept
    /// (and ignored by the dialects), and duplicate keys are an error.
    pub fn parse(raw: &'a [u8]) -> Result<Self, CredentialError> {
        if raw.is_empty() {
            return Err(CredentialError::ClientIdMissing);
        }
        if raw.len() > MAX_CLIENT_ID_LEN {
            return Err(CredentialError::ClientIdTooLong);
        }
        let text = std::str::from_utf8(raw).map_err(|_| CredentialError::ClientIdNotUtf8)?;
        if has_control_char(text) {
            return Err(CredentialError::ClientIdControlChar);
        }
        let (Some(first), Some(last)) = (text.find('|'), text.rfind('|')) else {
            return Err(CredentialError::ClientIdNoParams);
        };
        if first == last {
            return Err(CredentialError::ClientIdNoParams);
        }
        if last + 1 != text.len() {
            return Err(CredentialError::ClientIdTrailing);
        }
        let identity_part = text.get(..first).unwrap_or_default();
        if identity_part.is_empty() {
            return Err(CredentialError::IdentityPartEmpty);
        }
        if identity_part.len() > MAX_IDENTITY_PART_LEN {
            return Err(CredentialError::IdentityPartTooLong);
        }
        let mut parsed = ClientId {
            identity_part,
            text,
            params: [[0; 4]; MAX_PARAMS],
            param_count: 0,
        };
        let bytes = text.as_bytes();
        let mut start = first + 1;
        while start < last {
            let end = bytes
                .get(start..last)
                .and_then(|b| b.iter().position(|&c| c == b','))
                .map_or(last, |p| start + p);
            let (item_start, item_end) = trim_ows(bytes, start, end);
            start = end + 1;
            if item_start == item_end {
                continue;
            }
            let eq = bytes
                .get(item_start..item_end)
                .and_then(|b| b.iter().position(|&c| c == b'='))
                .map(|p| item_start + p)
                .ok_or(CredentialError::ParamWithoutEquals)?;
            let (key_start, key_end) = trim_ows(bytes, item_start, eq);
            let (value_start, value_end) = trim_ows(bytes, eq + 1, item_end);
            if key_start == key_end {
                return Err(CredentialError::ParamKeyEmpty);
            }
            if key_end - key_start > MAX_PARAM_KEY_LEN || value_end - value_start > MAX_PARAM_VALUE_LEN {
                return Err(CredentialError::ParamTooLong);
            }
            let key = text.get(key_start..key_end).unwrap_or_default();
            if parsed.param(key).is_some() {
                return Err(CredentialError::ParamDuplicate);
            }
            let slot = parsed
                .params
                .get_mut(parsed.param_count)
                .ok_or(CredentialError::TooManyParams)?;
            // Offsets fit in u16: the whole client id is at most 256 bytes.
            *slot = [key_start, key_end, value_start, value_end].map(|o| o as u16);
            parsed.param_count += 1;
        }
        Ok(parsed)
    }

    /// The value of the parameter `key` (ASCII case-insensitive), if present.
    pub fn param(&self, key: &str) -> Option<&'a str> {
        let text = self.text;
        self.params
            .get(..self.param_count)?
            .iter()
            .find(|[ks, ke, ..]| {
                text.get(usize::from(*ks)..usize::from(*ke))
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
            })
            .and_then(|[_, _, vs, ve]| text.get(usize::from(*vs)..usize::from(*ve)))
    }
}

/// Whether `text` has a control character; a byte scan for ASCII text.
pub(crate) fn has_control_char(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        text.chars().any(char::is_control)
    }
}

/// The range `start..end` without leading and trailing spaces and tabs.
fn trim_ows(bytes: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    let ows = |i: usize| matches!(bytes.get(i), Some(b' ' | b'\t'));
    while start < end && ows(start) {
        start += 1;
    }
    while end > start && ows(end - 1) {
        end -= 1;
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_and_last_bar() {
        let id = ClientId::parse(
            b"dev_0001{ip=192.168.1.20,version=enos-mqtt-sdk-2.3.0,compress=DEFAULT}|securemode=2,signmethod=sha256,timestamp=1600000000000|",
        )
        .unwrap();
        assert_eq!(
            id.identity_part,
            "dev_0001{ip=192.168.1.20,version=enos-mqtt-sdk-2.3.0,compress=DEFAULT}"
        );
        assert_eq!(id.param("SecureMode"), Some("2"));
        assert_eq!(id.param("timestamp"), Some("1600000000000"));
        assert_eq!(id.param("missing"), None);
    }

    #[test]
    fn trims_spaces_and_skips_empty_items() {
        let id = ClientId::parse(b"123456|securemode=2, signmethod=sha256 , timestamp=1548753362502,,|").unwrap();
        assert_eq!(id.param("signmethod"), Some("sha256"));
        assert_eq!(id.param("timestamp"), Some("1548753362502"));
    }

    #[test]
    fn empty_param_list_is_allowed() {
        assert_eq!(ClientId::parse(b"a||").unwrap().param_count, 0);
    }

    #[test]
    fn grammar_errors() {
        let cases: [(&[u8], CredentialError); 11] = [
            (b"", CredentialError::ClientIdMissing),
            (b"dev", CredentialError::ClientIdNoParams),
            (b"dev|securemode=2", CredentialError::ClientIdNoParams),
            (b"dev|securemode=2|x", CredentialError::ClientIdTrailing),
            (b"|securemode=2|", CredentialError::IdentityPartEmpty),
            (b"dev|securemode|", CredentialError::ParamWithoutEquals),
            (b"dev|=2|", CredentialError::ParamKeyEmpty),
            (b"dev|a=1,A=2|", CredentialError::ParamDuplicate),
            (b"dev|a=1\n|", CredentialError::ClientIdControlChar),
            (&[b'd', 0xff, b'|', b'|'], CredentialError::ClientIdNotUtf8),
            (
                b"dev|a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,m=13,n=14,o=15,p=16,q=17|",
                CredentialError::TooManyParams,
            ),
        ];
        for (raw, err) in cases {
            assert_eq!(ClientId::parse(raw), Err(err), "{}", String::from_utf8_lossy(raw));
        }
        let long = format!("dev|{}|", "a".repeat(300));
        assert_eq!(ClientId::parse(long.as_bytes()), Err(CredentialError::ClientIdTooLong));
        let long_identity = format!("{}||", "a".repeat(161));
        assert_eq!(
            ClientId::parse(long_identity.as_bytes()),
            Err(CredentialError::IdentityPartTooLong)
        );
        let long_value = format!("d|k={}|", "a".repeat(65));
        assert_eq!(
            ClientId::parse(long_value.as_bytes()),
            Err(CredentialError::ParamTooLong)
        );
    }
}
