//! Signature schemes (PROTOCOL.md §2.3, §2.4) and their constant-time
//! verification (§9 C1).
//!
//! EnOS signs with a plain hash over the content with the secret appended;
//! Aliyun with an HMAC keyed by the secret. The content is fed to the hash
//! piece by piece, so signing and verifying never allocate.

use hmac::{Mac, SimpleHmac};
use subtle::ConstantTimeEq;

/// A hash function a product may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256, 32-byte digest. The default.
    Sha256,
    /// SHA-1, 20-byte digest. Only for fleets on old SDKs.
    Sha1,
    /// MD5, 16-byte digest. Only for fleets on old SDKs.
    Md5,
}

impl HashAlg {
    /// Every algorithm, strongest first.
    pub const ALL: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha1, HashAlg::Md5];

    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha1 => 20,
            HashAlg::Md5 => 16,
        }
    }

    /// The lower-case name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha1 => "sha1",
            HashAlg::Md5 => "md5",
        }
    }

    /// Parses `sha256`, `sha1` or `md5` in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        HashAlg::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u8 {
        match self {
            HashAlg::Sha256 => 1,
            HashAlg::Sha1 => 2,
            HashAlg::Md5 => 4,
        }
    }
}

/// The set of hash algorithms a product allows; sha256 alone by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgSet(u8);

impl Default for AlgSet {
    fn default() -> Self {
        AlgSet(HashAlg::Sha256.bit())
    }
}

impl AlgSet {
    /// A set holding exactly `algs`.
    pub fn of(algs: &[HashAlg]) -> Self {
        AlgSet(algs.iter().fold(0, |acc, alg| acc | alg.bit()))
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: HashAlg) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Parses a comma-separated list such as `sha256,sha1`; `None` names the
    /// first unknown entry's position. An empty list is refused.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = AlgSet(0);
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let alg = HashAlg::from_name(name)
                .ok_or_else(|| format!("unknown sign method `{name}` (expected sha256, sha1 or md5)"))?;
            set.0 |= alg.bit();
        }
        if set.0 == 0 {
            return Err("the sign method list is empty".to_owned());
        }
        Ok(set)
    }

    /// The names in the set, comma-separated, strongest first.
    pub fn to_list(self) -> String {
        HashAlg::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .map(HashAlg::name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How the secret enters the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// EnOS: `HASH(content + secret)`, not an HMAC.
    AppendSecret,
    /// Aliyun: `HMAC(key = secret, message = content)`.
    Hmac,
}

/// A complete sign method: hash algorithm and scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignMethod {
    /// The hash algorithm.
    pub alg: HashAlg,
    /// How the secret is combined with the content.
    pub scheme: Scheme,
}

impl SignMethod {
    /// Parses an EnOS `signmethod`: lower-cased, one leading `hmac` stripped,
    /// then `sha256`, `sha1` or `md5` (PROTOCOL.md §2.3). Every EnOS name
    /// means the append-secret scheme.
    pub fn parse_enos(name: &str) -> Option<Self> {
        let lower_start = name
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("hmac"))
            .map_or(0, |_| 4);
        let alg = HashAlg::from_name(name.get(lower_start..)?)?;
        Some(SignMethod {
            alg,
            scheme: Scheme::AppendSecret,
        })
    }

    /// Parses an Aliyun `signmethod`: `hmacsha256`, `hmacsha1` or `hmacmd5`
    /// in any case.
    pub fn parse_aliyun(name: &str) -> Option<Self> {
        let alg = name
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("hmac"))
            .and_then(|_| name.get(4..))?;
        Some(SignMethod {
            alg: HashAlg::from_name(alg)?,
            scheme: Scheme::Hmac,
        })
    }
}

/// The longest digest, in bytes.
pub const MAX_DIGEST_LEN: usize = 32;

/// A decoded signature presented by a client, or a computed digest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; MAX_DIGEST_LEN],
    len: usize,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// Why a presented signature could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The hex text has the wrong length for the sign method.
    #[error("signature has the wrong length for the sign method")]
    Length,
    /// The text is not hex.
    #[error("signature is not hexadecimal")]
    NotHex,
}

impl Digest {
    /// Decodes a presented signature: exactly the method's hex length, any
    /// case. The length check depends only on the method (PROTOCOL.md §2.4).
    pub fn from_hex(alg: HashAlg, hex_text: &[u8]) -> Result<Self, SignatureError> {
        let len = alg.digest_len();
        if hex_text.len() != len * 2 {
            return Err(SignatureError::Length);
        }
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        let out = bytes.get_mut(..len).ok_or(SignatureError::Length)?;
        hex::decode_to_slice(hex_text, out).map_err(|_| SignatureError::NotHex)?;
        Ok(Digest { bytes, len })
    }

    /// An all-zero digest of `alg`'s length: what an undecodable signature
    /// is compared as, so it costs the same work and never verifies.
    pub fn zeroed(alg: HashAlg) -> Self {
        Digest {
            bytes: [0; MAX_DIGEST_LEN],
            len: alg.digest_len(),
        }
    }

    fn from_output(out: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        let len = out.len().min(MAX_DIGEST_LEN);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), out.get(..len)) {
            dst.copy_from_slice(src);
        }
        Digest { bytes, len }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Lower-case hex, as Aliyun SDKs send it.
    pub fn to_hex_lower(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// Upper-case hex, as the EnOS docs and most EnOS SDKs send it.
    pub fn to_hex_upper(&self) -> String {
        hex::encode_upper(self.as_bytes())
    }
}

/// The sign content: sorted `key` + `value` pairs, concatenated without
/// separators. Held as borrowed pieces and fed to the hash one by one.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    parts: [&'a [u8]; 8],
    len: usize,
}

impl<'a> Content<'a> {
    /// Content from `(key, value)` pairs, which must already be sorted by key
    /// (every caller uses fixed keys in their sorted order). At most four.
    pub fn new(pairs: &[(&'a str, &'a str)]) -> Self {
        let mut parts: [&[u8]; 8] = [b""; 8];
        let mut len = 0;
        for ((key, value), slot) in pairs.iter().zip(parts.chunks_exact_mut(2)) {
            if let [k, v] = slot {
                *k = key.as_bytes();
                *v = value.as_bytes();
                len += 2;
            }
        }
        Content { parts, len }
    }

    /// The pieces in order.
    pub fn pieces(&self) -> &[&'a [u8]] {
        self.parts.get(..self.len).unwrap_or_default()
    }

    /// The content as one string, for tests and the `sign` command.
    pub fn to_text(&self) -> String {
        self.pieces().iter().map(|p| String::from_utf8_lossy(p)).collect()
    }
}

fn append_secret<D: sha2::Digest>(content: &Content<'_>, secret: &[u8]) -> Digest {
    let mut hasher = D::new();
    for piece in content.pieces() {
        hasher.update(piece);
    }
    hasher.update(secret);
    Digest::from_output(&hasher.finalize())
}

fn hmac<D>(content: &Content<'_>, secret: &[u8]) -> Digest
where
    D: sha2::Digest + hmac::digest::core_api::BlockSizeUser,
{
    let Ok(mut mac) = <SimpleHmac<D> as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return Digest {
            bytes: [0; MAX_DIGEST_LEN],
            len: 0,
        };
    };
    for piece in content.pieces() {
        mac.update(piece);
    }
    Digest::from_output(&mac.finalize().into_bytes())
}

/// Computes the digest of `content` under `method` and `secret`.
pub fn compute(method: SignMethod, content: &Content<'_>, secret: &[u8]) -> Digest {
    match (method.scheme, method.alg) {
        (Scheme::AppendSecret, HashAlg::Sha256) => append_secret::<sha2::Sha256>(content, secret),
        (Scheme::AppendSecret, HashAlg::Sha1) => append_secret::<sha1::Sha1>(content, secret),
        (Scheme::AppendSecret, HashAlg::Md5) => append_secret::<md5::Md5>(content, secret),
        (Scheme::Hmac, HashAlg::Sha256) => hmac::<sha2::Sha256>(content, secret),
        (Scheme::Hmac, HashAlg::Sha1) => hmac::<sha1::Sha1>(content, secret),
        (Scheme::Hmac, HashAlg::Md5) => hmac::<md5::Md5>(content, secret),
    }
}

/// Whether `presented` is the digest of `content` under `method` and
/// `secret`, compared in constant time over the decoded bytes.
pub fn verify(method: SignMethod, content: &Content<'_>, secret: &[u8], presented: &Digest) -> bool {
    compute(method, content, secret)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

/// Verifies against `secret`, or, when there is none, against a dummy
/// secret of typical length, so a missing device or secret costs the same
/// work as a bad signature (PROTOCOL.md §9 C2). False without a secret.
pub fn verify_or_dummy(method: SignMethod, content: &Content<'_>, secret: Option<&[u8]>, presented: &Digest) -> bool {
    let ok = verify(
        method,
        content,
        secret.unwrap_or(crate::secret::DUMMY_SECRET),
        presented,
    );
    ok && secret.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enos(client_id: &str, dk: &str, pk: &str, ts: &str) -> Content<'static> {
        let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
        Content::new(&[
            ("clientId", leak(client_id)),
            ("deviceKey", leak(dk)),
            ("productKey", leak(pk)),
            ("timestamp", leak(ts)),
        ])
    }

    fn check(method: SignMethod, content: Content<'_>, secret: &str, expected_content: &str, expected: &str) {
        let with_secret = if method.scheme == Scheme::AppendSecret {
            format!("{}{secret}", content.to_text())
        } else {
            content.to_text()
        };
        assert_eq!(with_secret, expected_content);
        let digest = compute(method, &content, secret.as_bytes());
        assert_eq!(digest.to_hex_lower(), expected.to_ascii_lowercase());
        let presented = Digest::from_hex(method.alg, expected.as_bytes()).unwrap();
        assert!(verify(method, &content, secret.as_bytes(), &presented));
        assert!(!verify(method, &content, b"wrong", &presented));
    }

    fn enos_method(name: &str) -> SignMethod {
        SignMethod::parse_enos(name).unwrap()
    }

    // PROTOCOL.md §10.1
    #[test]
    fn vectors_enos_connect() {
        let rows = [
            (
                "E1",
                "sha256",
                ("123456", "test", "654321", "1548753362502"),
                "abcdefg",
                "clientId123456deviceKeytestproductKey654321timestamp1548753362502abcdefg",
                "B99032D49C706F7B27B22AB5CD2DD3C56A31E1BCBBC83BA0A2A6BB3272FBB166",
            ),
            (
                "E2",
                "sha256",
                ("123", "test", "123", "1524448722000"),
                "abcdefg",
                "clientId123deviceKeytestproductKey123timestamp1524448722000abcdefg",
                "A4F9AD91051E3CA89440E0157029DD358C3A2C556D3C543B9FD5A38484785AC9",
            ),
            (
                "E3",
                "hmacsha256",
                ("dev_0001", "dev_0001", "Ab3dEf9h", "1795320550912.803"),
                "S3cretDevice0001",
                "clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1795320550912.803S3cretDevice0001",
                "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec",
            ),
            (
                "E4",
                "hmacsha1",
                ("dev_0001", "dev_0001", "Ab3dEf9h", "1795320550912.803"),
                "S3cretDevice0001",
                "clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1795320550912.803S3cretDevice0001",
                "A7EFB031613B9C77F55B63C3330BAB1543FCD839",
            ),
            (
                "E5",
                "hmacsha1",
                ("dev_0001", "dev_0001", "Ab3dEf9h", "1700000000000"),
                "S3cretDevice0001",
                "clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1700000000000S3cretDevice0001",
                "B66E3AFFEFAA70A6EC6B262A041DC91E05F0FE5F",
            ),
            (
                "E6",
                "hmacmd5",
                ("dev_0001", "dev_0001", "Ab3dEf9h", "1700000000000"),
                "S3cretDevice0001",
                "clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1700000000000S3cretDevice0001",
                "dd34e79f4477f8743fdf29b488f382ca",
            ),
            (
                "E7",
                "sha256",
                ("Ab3dEf9h.dev_0001", "dev_0001", "Ab3dEf9h", "2524608000000"),
                "S3cretDevice0001",
                "clientIdAb3dEf9h.dev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp2524608000000S3cretDevice0001",
                "0E75DE5465D6FD737C1AC7471F7E384F4F0ED45A7F4AD8B1F8B057C89B3BEF57",
            ),
            (
                "E8",
                "sha256",
                (
                    "dev_0001{ip=192.168.1.20,version=enos-mqtt-sdk-2.3.0,compress=DEFAULT}",
                    "dev_0001",
                    "Ab3dEf9h",
                    "1600000000000",
                ),
                "S3cretDevice0001",
                "clientIddev_0001{ip=192.168.1.20,version=enos-mqtt-sdk-2.3.0,compress=DEFAULT}deviceKeydev_0001productKeyAb3dEf9htimestamp1600000000000S3cretDevice0001",
                "b8e37e43f49d5e3228a5c83233e889392bd2b60085bb4f01bc6540a018edc2f3",
            ),
            (
                "E9",
                "hmacsha256",
                ("dev_0002", "dev_0002", "Ab3dEf9h", "1795320550912.803"),
                "ProdSecretXYZ123",
                "clientIddev_0002deviceKeydev_0002productKeyAb3dEf9htimestamp1795320550912.803ProdSecretXYZ123",
                "4f4edbc363554b3d3f96bc4466c7356e6ee142bda4d65d1b10e6e139228acde8",
            ),
        ];
        for (name, method, (id, dk, pk, ts), secret, content, expected) in rows {
            eprintln!("{name}");
            check(enos_method(method), enos(id, dk, pk, ts), secret, content, expected);
        }
    }

    // PROTOCOL.md §10.2
    #[test]
    fn vectors_enos_sub_device() {
        let rows = [
            (
                "S1",
                "hmacsha256",
                ("subPksubDk1795320666359", "subDk", "subPk", "1795320666359"),
                "subSecret",
                "clientIdsubPksubDk1795320666359deviceKeysubDkproductKeysubPktimestamp1795320666359subSecret",
                "2fae1b6ec790f7bccb1023c4e123109cb053a04dea71ab00f8b1924fb9c888a3",
            ),
            (
                "S2",
                "hmacsha256",
                ("login.batch", "subDk", "subPk", "1795320666.3600545"),
                "subSecret",
                "clientIdlogin.batchdeviceKeysubDkproductKeysubPktimestamp1795320666.3600545subSecret",
                "bfa142ec107597fe6553c25da7b915f283ceb2025d0d781a7afaf6b411b6f8be",
            ),
            (
                "S3",
                "Sha256",
                ("subPksubDk", "subDk", "subPk", "86400123"),
                "subSecret",
                "clientIdsubPksubDkdeviceKeysubDkproductKeysubPktimestamp86400123subSecret",
                "D8687CF3293D49A8A829A0A65FC3B4CAA26666DA6667403670A2844C91F10CFB",
            ),
            (
                "S4",
                "sha256",
                ("subDk", "subDk", "subPk", "1700000000123"),
                "subSecret",
                "clientIdsubDkdeviceKeysubDkproductKeysubPktimestamp1700000000123subSecret",
                "6B454746B11B146EA59EC9BE6DF5E486298FAA82194AFCEA7DA37AD43FB9FF85",
            ),
            (
                "S5",
                "sha256",
                ("subPk.subDk3.1700000000456", "subDk3", "subPk", "1700000000456"),
                "subProductSecret",
                "clientIdsubPk.subDk3.1700000000456deviceKeysubDk3productKeysubPktimestamp1700000000456subProductSecret",
                "b72a4e04af1512725e75215b8fdda25d3f13d3a686e66a4d28b20303fb9400df",
            ),
        ];
        for (name, method, (id, dk, pk, ts), secret, content, expected) in rows {
            eprintln!("{name}");
            check(enos_method(method), enos(id, dk, pk, ts), secret, content, expected);
        }
    }

    // PROTOCOL.md §10.3
    #[test]
    fn vectors_aliyun() {
        let m = |n| SignMethod::parse_aliyun(n).unwrap();
        let pk = "a1B2c3D4e5F";
        check(
            m("hmacsha1"),
            Content::new(&[
                ("clientId", "a1B2c3D4e5F&dev01"),
                ("deviceName", "dev01"),
                ("productKey", pk),
                ("timestamp", "1700000000"),
            ]),
            "secret123",
            "clientIda1B2c3D4e5F&dev01deviceNamedev01productKeya1B2c3D4e5Ftimestamp1700000000",
            "6050c72c4903195add9f0a6103a0af069b171707",
        );
        check(
            m("hmacsha256"),
            Content::new(&[
                ("clientId", "a1B2c3D4e5F.dev01"),
                ("deviceName", "dev01"),
                ("productKey", pk),
                ("timestamp", "1700000000000"),
            ]),
            "secret123",
            "clientIda1B2c3D4e5F.dev01deviceNamedev01productKeya1B2c3D4e5Ftimestamp1700000000000",
            "97480593f09d3319e87f67de94f87a811c7d2033fb3640bae69db782d79ae346",
        );
        check(
            m("hmacmd5"),
            Content::new(&[
                ("clientId", "a1B2c3D4e5F.dev01"),
                ("deviceName", "dev01"),
                ("productKey", pk),
            ]),
            "secret123",
            "clientIda1B2c3D4e5F.dev01deviceNamedev01productKeya1B2c3D4e5F",
            "9a244b29204cc22fbb73504375e4b4ea",
        );
        check(
            m("hmacsha256"),
            Content::new(&[
                ("deviceName", "dev02"),
                ("productKey", pk),
                ("random", "Xq3Lm9Zt2Wv8Rk1"),
            ]),
            "ProdSecretAli01",
            "deviceNamedev02productKeya1B2c3D4e5FrandomXq3Lm9Zt2Wv8Rk1",
            "78b27b9a02a66f3f106af5d7d586dab53fc69c439c27daa2c66eca916f34173c",
        );
        check(
            SignMethod::parse_enos("hmacSha256")
                .map(|s| SignMethod {
                    scheme: Scheme::Hmac,
                    ..s
                })
                .unwrap(),
            Content::new(&[
                ("clientId", "a1SubPk0001.subdev01|lan=Python,_v=2.2.1,_ss=1|"),
                ("deviceName", "subdev01"),
                ("productKey", "a1SubPk0001"),
                ("timestamp", "1700000000123"),
            ]),
            "subSecretAli",
            "clientIda1SubPk0001.subdev01|lan=Python,_v=2.2.1,_ss=1|deviceNamesubdev01productKeya1SubPk0001timestamp1700000000123",
            "10b5a8bcfa468a9fa8f48eeca094fd028749e16ce377e201f728419b65cb53c9",
        );
    }

    #[test]
    fn sign_method_names() {
        for (name, alg) in [
            ("sha256", HashAlg::Sha256),
            ("HMACSHA256", HashAlg::Sha256),
            ("hmacSha1", HashAlg::Sha1),
            ("Sha256", HashAlg::Sha256),
            ("md5", HashAlg::Md5),
            ("hmacmd5", HashAlg::Md5),
        ] {
            assert_eq!(
                SignMethod::parse_enos(name),
                Some(SignMethod {
                    alg,
                    scheme: Scheme::AppendSecret
                }),
                "{name}"
            );
        }
        for bad in ["", "sha512", "hmachmacsha256", "hmac", "hmacé"] {
            assert_eq!(SignMethod::parse_enos(bad), None, "{bad}");
        }
        assert_eq!(SignMethod::parse_aliyun("HmacSHA1").map(|m| m.alg), Some(HashAlg::Sha1));
        assert_eq!(SignMethod::parse_aliyun("sha1"), None);
    }

    #[test]
    fn presented_hex_any_case_exact_length() {
        let lower = "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec";
        let upper = lower.to_ascii_uppercase();
        assert_eq!(
            Digest::from_hex(HashAlg::Sha256, lower.as_bytes()),
            Digest::from_hex(HashAlg::Sha256, upper.as_bytes())
        );
        assert_eq!(
            Digest::from_hex(HashAlg::Sha256, &lower.as_bytes()[..63]),
            Err(SignatureError::Length)
        );
        assert_eq!(
            Digest::from_hex(HashAlg::Sha1, lower.as_bytes()),
            Err(SignatureError::Length)
        );
        assert_eq!(
            Digest::from_hex(HashAlg::Md5, b"zz34e79f4477f8743fdf29b488f382ca"),
            Err(SignatureError::NotHex)
        );
    }

    #[test]
    fn alg_sets() {
        assert!(AlgSet::default().contains(HashAlg::Sha256));
        assert!(!AlgSet::default().contains(HashAlg::Sha1));
        let set = AlgSet::parse("sha256, SHA1").unwrap();
        assert!(set.contains(HashAlg::Sha1) && !set.contains(HashAlg::Md5));
        assert_eq!(set.to_list(), "sha256,sha1");
        assert!(AlgSet::parse("sha512").is_err());
        assert!(AlgSet::parse("").is_err());
    }
}
