//! Topic rights (PROTOCOL.md §7): templates with `{productKey}` and
//! `{deviceKey}` placeholders, publish and delivery matching, and
//! subscription filters checked by containment.
//!
//! A filter is allowed only if every topic it can match is allowed, so
//! `/sys/+/+/#` never passes for a device even though plain matching would
//! accept it. Checks split topics lazily and never allocate.

use crate::credentials::{Dialect, Identity, Registration};

/// A set of rights on a topic family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    /// PUB: publish, will, retained message.
    pub const PUBLISH: Rights = Rights(1);
    /// SUB: subscribe with a filter (containment).
    pub const SUBSCRIBE: Rights = Rights(2);
    /// READ: delivery of a concrete topic.
    pub const READ: Rights = Rights(4);
    /// SUB and READ together, what a `sub:` rule grants.
    pub const SUBSCRIBE_READ: Rights = Rights(6);
    /// Every right.
    pub const ALL: Rights = Rights(7);

    /// Whether every right in `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One level of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(Box<str>),
    ProductKey,
    DeviceKey,
    SingleWildcard,
    MultiWildcard,
}

/// Why a template or rule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No `pub:`, `sub:` or `all:` prefix.
    #[error("rule `{0}` must start with `pub:`, `sub:` or `all:`")]
    NoRightPrefix(String),
    /// The topic part is empty.
    #[error("topic template is empty")]
    Empty,
    /// A wildcard shares a level with other characters, or `#` is not last.
    #[error("topic template `{0}` has a misplaced wildcard")]
    BadWildcard(String),
    /// A placeholder shares a level with other characters or is unknown.
    #[error("topic template `{0}` has a placeholder that is not a whole level (use {{productKey}} or {{deviceKey}})")]
    BadPlaceholder(String),
    /// Placeholders in a principal rule, which has no device.
    #[error("rule `{0}` uses a placeholder, which principals cannot")]
    PlaceholderInPrincipalRule(String),
    /// A NUL character.
    #[error("topic template contains NUL")]
    Nul,
}

/// A topic family with the rights it grants, e.g. `sub:/sys/+/+/thing/#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    text: Box<str>,
    levels: Box<[Level]>,
    rights: Rights,
    /// Whether a gateway gets this family for its logged-in sub-devices.
    for_gateway: bool,
}

impl TopicRule {
    /// Parses a template such as `/sys/{productKey}/{deviceKey}/#` granting `rights`.
    pub fn template(text: &str, rights: Rights) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.contains('\0') {
            return Err(TemplateError::Nul);
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "#" if i + 1 == parts.len() => Level::MultiWildcard,
                "+" => Level::SingleWildcard,
                "{productKey}" => Level::ProductKey,
                "{deviceKey}" | "{deviceName}" => Level::DeviceKey,
                p if p.contains(['+', '#']) => {
                    return Err(TemplateError::BadWildcard(text.to_owned()));
                }
                p if p.contains(['{', '}']) => {
                    return Err(TemplateError::BadPlaceholder(text.to_owned()));
                }
                p => Level::Literal(p.into()),
            };
            levels.push(level);
        }
        let for_gateway = !text.starts_with("/ext/session/");
        Ok(TopicRule {
            text: text.into(),
            levels: levels.into(),
            rights,
            for_gateway,
        })
    }

    /// Parses `pub:TOPIC`, `sub:TOPIC` (subscribe and read) or `all:TOPIC`.
    pub fn parse(rule: &str) -> Result<Self, TemplateError> {
        let (prefix, topic) = rule
            .split_once(':')
            .ok_or_else(|| TemplateError::NoRightPrefix(rule.to_owned()))?;
        let rights = match prefix {
            "pub" => Rights::PUBLISH,
            "sub" => Rights::SUBSCRIBE_READ,
            "all" => Rights::ALL,
            _ => return Err(TemplateError::NoRightPrefix(rule.to_owned())),
        };
        TopicRule::template(topic, rights)
    }

    /// Parses a principal rule, which may not use placeholders.
    pub fn parse_principal(rule: &str) -> Result<Self, TemplateError> {
        let parsed = TopicRule::parse(rule)?;
        if parsed
            .levels
            .iter()
            .any(|l| matches!(l, Level::ProductKey | Level::DeviceKey))
        {
            return Err(TemplateError::PlaceholderInPrincipalRule(rule.to_owned()));
        }
        Ok(parsed)
    }

    /// The rule in its `pub:`/`sub:`/`all:` text form.
    pub fn to_rule_string(&self) -> String {
        let prefix = match self.rights {
            Rights::PUBLISH => "pub",
            Rights::SUBSCRIBE_READ => "sub",
            _ => "all",
        };
        format!("{prefix}:{}", self.text)
    }

    /// The rights this rule grants.
    pub fn rights(&self) -> Rights {
        self.rights
    }
}

/// How placeholders bind while matching.
enum Bind<'i, 't> {
    /// Placeholders must equal this identity.
    Fixed(Identity<'i>),
    /// Placeholders capture the topic's levels (gateway checks).
    Capture {
        product_key: Option<&'t str>,
        device_key: Option<&'t str>,
    },
}

impl<'t> Bind<'_, 't> {
    fn level(&mut self, level: &Level, part: &'t str) -> bool {
        let (fixed, slot) = match (self, level) {
            (Bind::Fixed(id), Level::ProductKey) => return id.product_key == part,
            (Bind::Fixed(id), Level::DeviceKey) => return id.device_key == part,
            (Bind::Capture { product_key, .. }, Level::ProductKey) => (product_key.is_some(), product_key),
            (Bind::Capture { device_key, .. }, Level::DeviceKey) => (device_key.is_some(), device_key),
            _ => return false,
        };
        if part.is_empty() || part == "+" || part == "#" {
            return false;
        }
        if fixed {
            return *slot == Some(part);
        }
        *slot = Some(part);
        true
    }
}

fn dollar_guard(levels: &[Level], topic: &str) -> bool {
    !topic.starts_with('$') || matches!(levels.first(), Some(Level::Literal(_)))
}

/// `match(pattern, topic)` of PROTOCOL.md §7.5 with placeholders bound by `bind`.
fn matches_topic<'t>(levels: &[Level], bind: &mut Bind<'_, 't>, topic: &'t str) -> bool {
    if !dollar_guard(levels, topic) {
        return false;
    }
    let mut parts = topic.split('/');
    for level in levels {
        if *level == Level::MultiWildcard {
            return true;
        }
        let Some(part) = parts.next() else {
            return false;
        };
        let ok = match level {
            Level::Literal(literal) => **literal == *part,
            Level::SingleWildcard => true,
            _ => bind.level(level, part),
        };
        if !ok {
            return false;
        }
    }
    parts.next().is_none()
}

/// `contains(pattern, filter)` of PROTOCOL.md §7.5 with placeholders bound by `bind`.
fn contains_filter<'t>(levels: &[Level], bind: &mut Bind<'_, 't>, filter: &'t str) -> bool {
    if !dollar_guard(levels, filter) {
        return false;
    }
    let mut parts = filter.split('/');
    for level in levels {
        if *level == Level::MultiWildcard {
            return true;
        }
        let Some(part) = parts.next() else {
            return false;
        };
        if part == "#" {
            return false;
        }
        let ok = match level {
            Level::SingleWildcard => true,
            _ if part == "+" => false,
            Level::Literal(literal) => **literal == *part,
            _ => bind.level(level, part),
        };
        if !ok {
            return false;
        }
    }
    parts.next().is_none()
}

/// Whether `topic` is a valid concrete topic: non-empty, no wildcard, no NUL.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// Whether `filter` is a valid filter: `#` only as the whole last level,
/// `+` only as a whole level, no NUL.
pub fn is_valid_filter(filter: &str) -> bool {
    let bytes = filter.as_bytes();
    !bytes.is_empty()
        && bytes.iter().enumerate().all(|(i, &b)| {
            let level_start = i == 0 || bytes.get(i - 1) == Some(&b'/');
            match b {
                0 => false,
                b'#' => level_start && i + 1 == bytes.len(),
                b'+' => level_start && matches!(bytes.get(i + 1), None | Some(b'/')),
                _ => true,
            }
        })
}

/// Ordinary MQTT matching of a concrete `topic` by a subscription
/// `filter`; wildcards at the first level never match a `$` topic.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let (mut f, mut t) = (filter.split('/'), topic.split('/'));
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Splits `$share/{group}/{filter}` or `$queue/{filter}`: `Some(Ok(inner))`
/// for a well-formed shared filter, `Some(Err(()))` for a malformed one,
/// `None` for a plain filter.
pub fn strip_shared(filter: &str) -> Option<Result<&str, ()>> {
    if let Some(rest) = filter.strip_prefix("$share/") {
        let Some((group, inner)) = rest.split_once('/') else {
            return Some(Err(()));
        };
        if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
            return Some(Err(()));
        }
        return Some(Ok(inner));
    }
    filter
        .strip_prefix("$queue/")
        .map(|inner| if inner.is_empty() { Err(()) } else { Ok(inner) })
}

/// The rules of one session kind: a list of topic families.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicRules {
    rules: Vec<TopicRule>,
}

fn rules(list: &[(&str, Rights)]) -> TopicRules {
    TopicRules {
        rules: list
            .iter()
            .filter_map(|(text, rights)| TopicRule::template(text, *rights).ok())
            .collect(),
    }
}

impl TopicRules {
    /// Rules from a list of parsed rules.
    pub fn new(rules: Vec<TopicRule>) -> Self {
        TopicRules { rules }
    }

    /// The default families of a normal device session (PROTOCOL.md §7.2, §7.3).
    pub fn device_defaults(dialect: Dialect) -> Self {
        const SUB_READ: Rights = Rights::SUBSCRIBE_READ;
        match dialect {
            Dialect::Enos => rules(&[
                ("/sys/{productKey}/{deviceKey}/#", Rights::ALL),
                ("/ext/session/{productKey}/{deviceKey}/#", Rights::ALL),
            ]),
            Dialect::Aliyun => rules(&[
                ("/sys/{productKey}/{deviceKey}/#", Rights::ALL),
                ("/ext/session/{productKey}/{deviceKey}/#", Rights::ALL),
                ("/{productKey}/{deviceKey}/user/#", Rights::ALL),
                ("/{productKey}/{deviceKey}/update", Rights::PUBLISH),
                ("/{productKey}/{deviceKey}/update/error", Rights::PUBLISH),
                ("/{productKey}/{deviceKey}/get", SUB_READ),
                ("/shadow/update/{productKey}/{deviceKey}", Rights::PUBLISH),
                ("/shadow/get/{productKey}/{deviceKey}", SUB_READ),
                ("/ota/device/inform/{productKey}/{deviceKey}", Rights::PUBLISH),
                ("/ota/device/upgrade/{productKey}/{deviceKey}", SUB_READ),
                ("/ext/rrpc/+/{productKey}/{deviceKey}/#", Rights::ALL),
                ("/broadcast/{productKey}/#", SUB_READ),
            ]),
        }
    }

    /// The rights of an EnOS securemode-3 activation session (§7.2).
    pub fn activation_session() -> Self {
        rules(&[
            (
                "/ext/session/{productKey}/{deviceKey}/thing/activate/info_reply",
                Rights::PUBLISH,
            ),
            (
                "/ext/session/{productKey}/{deviceKey}/thing/activate/info",
                Rights::SUBSCRIBE_READ,
            ),
        ])
    }

    /// The rights of an Aliyun registration session: READ on the push topic only (§7.3).
    pub fn registration_session(kind: Registration) -> Self {
        match kind {
            Registration::Register => rules(&[("/ext/register", Rights::READ)]),
            Registration::Regnwl => rules(&[("/ext/regnwl", Rights::READ)]),
        }
    }

    /// These rules followed by `extra`.
    pub fn with(mut self, extra: &[TopicRule]) -> Self {
        self.rules.extend_from_slice(extra);
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[TopicRule] {
        &self.rules
    }

    /// PUB or READ on a concrete topic for the device `identity`.
    pub fn allows_topic(&self, right: Rights, identity: Identity<'_>, topic: &str) -> bool {
        if topic.starts_with('$') || !is_valid_topic(topic) {
            return false;
        }
        self.rules
            .iter()
            .any(|r| r.rights.contains(right) && matches_topic(&r.levels, &mut Bind::Fixed(identity), topic))
    }

    /// SUB on a filter (shared prefix already stripped) for the device `identity`.
    pub fn allows_filter(&self, identity: Identity<'_>, filter: &str) -> bool {
        if filter.starts_with('$') || !is_valid_filter(filter) {
            return false;
        }
        self.rules.iter().any(|r| {
            r.rights.contains(Rights::SUBSCRIBE) && contains_filter(&r.levels, &mut Bind::Fixed(identity), filter)
        })
    }

    /// For a gateway: the identity named by `topic` (or filter, for SUB) in
    /// a gateway-eligible family granting `right`, if any. The caller then
    /// checks that this identity is a sub-device logged in through it.
    pub fn sub_device_in<'t>(&self, right: Rights, topic: &'t str) -> Option<Identity<'t>> {
        let filter = right == Rights::SUBSCRIBE;
        let valid = if filter {
            is_valid_filter(topic)
        } else {
            is_valid_topic(topic)
        };
        if topic.starts_with('$') || !valid {
            return None;
        }
        self.rules
            .iter()
            .filter(|r| r.for_gateway && r.rights.contains(right))
            .find_map(|r| {
                let mut bind = Bind::Capture {
                    product_key: None,
                    device_key: None,
                };
                let ok = if filter {
                    contains_filter(&r.levels, &mut bind, topic)
                } else {
                    matches_topic(&r.levels, &mut bind, topic)
                };
                match (ok, bind) {
                    (
                        true,
                        Bind::Capture {
                            product_key: Some(product_key),
                            device_key: Some(device_key),
                        },
                    ) => Some(Identity {
                        product_key,
                        device_key,
                    }),
                    _ => None,
                }
            })
    }

    /// For a principal: PUB or READ on a topic. Wildcards never match `$` topics.
    pub fn principal_allows_topic(&self, right: Rights, topic: &str) -> bool {
        let none = Identity {
            product_key: "",
            device_key: "",
        };
        is_valid_topic(topic)
            && self
                .rules
                .iter()
                .any(|r| r.rights.contains(right) && matches_topic(&r.levels, &mut Bind::Fixed(none), topic))
    }

    /// For a principal: SUB on a filter (shared prefix already stripped).
    pub fn principal_allows_filter(&self, filter: &str) -> bool {
        let none = Identity {
            product_key: "",
            device_key: "",
        };
        is_valid_filter(filter)
            && self.rules.iter().any(|r| {
                r.rights.contains(Rights::SUBSCRIBE) && contains_filter(&r.levels, &mut Bind::Fixed(none), filter)
            })
    }
}

/// A rule with the device's keys filled in, in the cheapest form that
/// decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BoundForm {
    /// `#` alone: every topic (but `$` topics, refused before).
    Everything,
    /// Literal levels then `#`: the topic equals the prefix or continues it
    /// with `/`.
    Prefix(Box<str>),
    /// Literal levels only: the topic equals the text.
    Exact(Box<str>),
    /// Has `+`: matched level by level.
    Levels(Box<[Level]>),
}

/// One device's rules with its product key and device key bound, built at
/// login so that most checks are a single string comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoundRules {
    rules: Vec<(BoundForm, Rights)>,
}

impl BoundRules {
    /// Binds `rules` to `identity`.
    pub fn bind(rules: &TopicRules, identity: Identity<'_>) -> Self {
        let bound = rules
            .rules
            .iter()
            .map(|rule| {
                let literal = |level: &Level| match level {
                    Level::Literal(l) => Some(l.to_string()),
                    Level::ProductKey => Some(identity.product_key.to_owned()),
                    Level::DeviceKey => Some(identity.device_key.to_owned()),
                    Level::SingleWildcard | Level::MultiWildcard => None,
                };
                let (body, multi) = match rule.levels.split_last() {
                    Some((Level::MultiWildcard, body)) => (body, true),
                    _ => (&rule.levels[..], false),
                };
                let texts: Option<Vec<String>> = body.iter().map(literal).collect();
                let form = match texts {
                    Some(texts) if multi && texts.is_empty() => BoundForm::Everything,
                    Some(texts) if multi => BoundForm::Prefix(texts.join("/").into()),
                    Some(texts) => BoundForm::Exact(texts.join("/").into()),
                    None => BoundForm::Levels(
                        rule.levels
                            .iter()
                            .map(|l| match l {
                                Level::ProductKey => Level::Literal(identity.product_key.into()),
                                Level::DeviceKey => Level::Literal(identity.device_key.into()),
                                other => other.clone(),
                            })
                            .collect(),
                    ),
                };
                (form, rule.rights)
            })
            .collect();
        BoundRules { rules: bound }
    }

    /// PUB or READ on a concrete topic.
    pub fn allows_topic(&self, right: Rights, topic: &str) -> bool {
        if topic.starts_with('$') || !is_valid_topic(topic) {
            return false;
        }
        let none = Identity {
            product_key: "",
            device_key: "",
        };
        self.rules.iter().any(|(form, rights)| {
            rights.contains(right)
                && match form {
                    BoundForm::Everything => true,
                    BoundForm::Prefix(prefix) => within_prefix(prefix, topic),
                    BoundForm::Exact(text) => same_text(text, topic),
                    BoundForm::Levels(levels) => matches_topic(levels, &mut Bind::Fixed(none), topic),
                }
        })
    }

    /// SUB on a filter (shared prefix already stripped), by containment.
    pub fn allows_filter(&self, filter: &str) -> bool {
        if filter.starts_with('$') || !is_valid_filter(filter) {
            return false;
        }
        let none = Identity {
            product_key: "",
            device_key: "",
        };
        self.rules.iter().any(|(form, rights)| {
            rights.contains(Rights::SUBSCRIBE)
                && match form {
                    // Every topic of the filter starts with the prefix's literal
                    // levels, and `#` covers whatever follows.
                    BoundForm::Everything => true,
                    BoundForm::Prefix(prefix) => within_prefix(prefix, filter),
                    BoundForm::Exact(text) => same_text(text, filter),
                    BoundForm::Levels(levels) => contains_filter(levels, &mut Bind::Fixed(none), filter),
                }
        })
    }
}

/// Whether `topic` is `prefix` or continues it with `/` (what `prefix/#` matches).
fn within_prefix(prefix: &str, topic: &str) -> bool {
    let (p, t) = (prefix.as_bytes(), topic.as_bytes());
    // Comparing the last byte first rejects most rules without a memcmp call.
    t.len() >= p.len()
        && (p.is_empty() || t.get(p.len() - 1) == p.last())
        && matches!(t.get(p.len()), None | Some(b'/'))
        && t.starts_with(p)
}

/// `a == b`, rejecting on length and last byte before comparing the rest.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEV: Identity<'static> = Identity {
        product_key: "Ab3dEf9h",
        device_key: "dev_0001",
    };

    fn enos() -> TopicRules {
        TopicRules::device_defaults(Dialect::Enos)
    }

    /// SUB as a device of a product with or without shared subscriptions.
    fn sub(rules: &TopicRules, id: Identity<'_>, filter: &str, shared_allowed: bool) -> bool {
        match strip_shared(filter) {
            Some(Ok(inner)) => shared_allowed && rules.allows_filter(id, inner),
            Some(Err(())) => false,
            None => rules.allows_filter(id, filter),
        }
    }

    // PROTOCOL.md §10.4, device rows.
    #[test]
    fn vectors_device_rights() {
        let r = enos();
        assert!(r.allows_topic(Rights::PUBLISH, DEV, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"));
        assert!(!r.allows_topic(Rights::PUBLISH, DEV, "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"));
        assert!(r.allows_topic(Rights::PUBLISH, DEV, "/sys/Ab3dEf9h/dev_0001"));
        let allowed = ["/sys/Ab3dEf9h/dev_0001/thing/service/+", "/sys/Ab3dEf9h/dev_0001/#"];
        let denied = [
            "/sys/Ab3dEf9h/+/#",
            "/sys/#",
            "#",
            "+/sys/Ab3dEf9h/dev_0001/#",
            "/+/Ab3dEf9h/dev_0001/#",
            "$SYS/#",
        ];
        for f in allowed {
            assert!(sub(&r, DEV, f, false), "{f}");
        }
        for f in denied {
            assert!(!sub(&r, DEV, f, false), "{f}");
            assert!(!sub(&r, DEV, f, true), "{f}");
        }
        assert!(!sub(&r, DEV, "$share/g1/sys/Ab3dEf9h/dev_0001/#", false));
        assert!(!sub(&r, DEV, "$share/g1/sys/Ab3dEf9h/dev_0001/#", true));
        assert!(!sub(&r, DEV, "$share/g1//sys/Ab3dEf9h/dev_0001/#", false));
        assert!(sub(&r, DEV, "$share/g1//sys/Ab3dEf9h/dev_0001/#", true));
        assert!(!sub(&r, DEV, "$share/g+//sys/Ab3dEf9h/dev_0001/#", true));
        assert!(!sub(&r, DEV, "$share//sys/Ab3dEf9h/dev_0001/#", true));
    }

    // PROTOCOL.md §10.4, gateway rows: the engine checks membership; here the capture.
    #[test]
    fn vectors_gateway_capture() {
        let r = enos();
        let sub_dev = Identity {
            product_key: "subPk",
            device_key: "subDk",
        };
        assert_eq!(
            r.sub_device_in(Rights::PUBLISH, "/sys/subPk/subDk/thing/measurepoint/post"),
            Some(sub_dev)
        );
        assert_eq!(r.sub_device_in(Rights::SUBSCRIBE, "/ext/session/subPk/subDk/#"), None);
        assert_eq!(r.sub_device_in(Rights::SUBSCRIBE, "/sys/subPk/+/#"), None);
        assert_eq!(
            r.sub_device_in(Rights::SUBSCRIBE, "/sys/subPk/subDk/thing/service/+"),
            Some(sub_dev)
        );
        assert_eq!(r.sub_device_in(Rights::PUBLISH, "/sys//subDk/x"), None);
    }

    #[test]
    fn vectors_aliyun_rights() {
        let r = TopicRules::device_defaults(Dialect::Aliyun);
        let dev = Identity {
            product_key: "a1B2c3D4e5F",
            device_key: "dev01",
        };
        assert!(r.allows_filter(dev, "/ext/rrpc/+/a1B2c3D4e5F/dev01/user/get"));
        assert!(!r.allows_filter(dev, "/ext/rrpc/#"));
        assert!(!r.allows_topic(Rights::PUBLISH, dev, "/broadcast/a1B2c3D4e5F/x"));
        assert!(r.allows_topic(Rights::READ, dev, "/broadcast/a1B2c3D4e5F/x"));
        assert!(r.allows_topic(Rights::PUBLISH, dev, "/a1B2c3D4e5F/dev01/update"));
        assert!(!r.allows_topic(Rights::READ, dev, "/a1B2c3D4e5F/dev01/update"));
    }

    #[test]
    fn session_kinds() {
        let act = TopicRules::activation_session();
        assert!(act.allows_topic(
            Rights::PUBLISH,
            DEV,
            "/ext/session/Ab3dEf9h/dev_0001/thing/activate/info_reply"
        ));
        assert!(!act.allows_topic(Rights::PUBLISH, DEV, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"));
        assert!(act.allows_topic(Rights::READ, DEV, "/ext/session/Ab3dEf9h/dev_0001/thing/activate/info"));
        let reg = TopicRules::registration_session(Registration::Register);
        assert!(reg.allows_topic(Rights::READ, DEV, "/ext/register"));
        assert!(!reg.allows_topic(Rights::PUBLISH, DEV, "/ext/register"));
        assert!(!reg.allows_filter(DEV, "/ext/register"));
    }

    #[test]
    fn principals() {
        let r = TopicRules::new(vec![
            TopicRule::parse_principal("sub:/sys/+/+/thing/#").unwrap(),
            TopicRule::parse_principal("pub:/sys/+/+/thing/service/#").unwrap(),
        ]);
        assert!(r.principal_allows_filter("/sys/+/+/thing/#"));
        assert!(r.principal_allows_filter("/sys/pk/+/thing/measurepoint/post"));
        assert!(!r.principal_allows_filter("/sys/#"));
        assert!(r.principal_allows_topic(Rights::READ, "/sys/pk/dk/thing/measurepoint/post"));
        assert!(r.principal_allows_topic(Rights::PUBLISH, "/sys/pk/dk/thing/service/reboot"));
        assert!(!r.principal_allows_topic(Rights::PUBLISH, "/sys/pk/dk/thing/measurepoint/post"));
        let everything = TopicRules::new(vec![TopicRule::parse_principal("sub:#").unwrap()]);
        assert!(!everything.principal_allows_topic(Rights::READ, "$SYS/broker/uptime"));
        assert!(TopicRule::parse_principal("sub:/sys/{productKey}/#").is_err());
    }

    #[test]
    fn template_errors() {
        assert!(matches!(TopicRule::parse("x:/a"), Err(TemplateError::NoRightPrefix(_))));
        assert!(matches!(
            TopicRule::parse("pub:/a/#/b"),
            Err(TemplateError::BadWildcard(_))
        ));
        assert!(matches!(
            TopicRule::parse("pub:/a/b+"),
            Err(TemplateError::BadWildcard(_))
        ));
        assert!(matches!(
            TopicRule::parse("pub:/a/{pk}"),
            Err(TemplateError::BadPlaceholder(_))
        ));
        assert!(matches!(TopicRule::parse("pub:"), Err(TemplateError::Empty)));
        assert_eq!(
            TopicRule::parse("sub:/a/{productKey}/#").unwrap().to_rule_string(),
            "sub:/a/{productKey}/#"
        );
    }

    #[test]
    fn mqtt_filter_matching() {
        for (f, t) in [
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("+/b", "/b"),
            ("#", "x"),
            ("/sys/+/+/thing/#", "/sys/p/d/thing/x"),
        ] {
            assert!(filter_matches(f, t), "{f} {t}");
        }
        for (f, t) in [
            ("a/+", "a"),
            ("a/b", "a/b/c"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a/+/c", "a/b/d"),
        ] {
            assert!(!filter_matches(f, t), "{f} {t}");
        }
    }

    #[test]
    fn filter_and_topic_validity() {
        for ok in ["#", "+", "a/+/b", "/a/#", "a//b", "+/+"] {
            assert!(is_valid_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "#/", "a\0"] {
            assert!(!is_valid_filter(bad), "{bad}");
        }
        assert!(is_valid_topic("/a//b"));
        assert!(!is_valid_topic("a/+"));
        assert!(!is_valid_topic(""));
    }

    /// Brute-force containment: every topic over a small alphabet, up to one
    /// level longer than either side, that the filter matches, the pattern
    /// must match too. `c` stands for any literal neither side names. The
    /// empty topic is enumerated too, as §7.5 does when `/#` reaches its
    /// empty parent level; that only makes containment stricter.
    fn brute_contains(pattern: &[&str], filter: &[&str]) -> bool {
        let max = pattern.len().max(filter.len()) + 1;
        let alphabet = ["", "a", "b", "c"];
        let mut topic: Vec<&str> = Vec::new();
        fn walk<'a>(
            topic: &mut Vec<&'a str>,
            max: usize,
            alphabet: &[&'a str],
            f: &mut dyn FnMut(&[&'a str]) -> bool,
        ) -> bool {
            if !topic.is_empty() && !f(topic) {
                return false;
            }
            if topic.len() == max {
                return true;
            }
            for l in alphabet {
                topic.push(l);
                let ok = walk(topic, max, alphabet, f);
                topic.pop();
                if !ok {
                    return false;
                }
            }
            true
        }
        let m = |p: &[&str], t: &[&str]| {
            let (p, t) = (p.join("/"), t.join("/"));
            let rule = TopicRule::template(&p, Rights::ALL).unwrap();
            matches_topic(&rule.levels, &mut Bind::Fixed(DEV), &t)
        };
        walk(&mut topic, max, &alphabet, &mut |t| !m(filter, t) || m(pattern, t))
    }

    fn levels_strategy() -> impl Strategy<Value = Vec<&'static str>> {
        (
            prop::collection::vec(prop::sample::select(vec!["", "a", "b", "+"]), 1..4),
            any::<bool>(),
        )
            .prop_map(|(mut v, hash)| {
                if hash {
                    v.push("#");
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn containment_matches_brute_force(pattern in levels_strategy(), filter in levels_strategy()) {
            prop_assume!(!pattern.join("/").is_empty() && !filter.join("/").is_empty());
            let rule = TopicRule::template(&pattern.join("/"), Rights::ALL).unwrap();
            let fast = contains_filter(&rule.levels, &mut Bind::Fixed(DEV), &filter.join("/"));
            prop_assert_eq!(fast, brute_contains(&pattern, &filter), "pattern {:?} filter {:?}", pattern, filter);
        }

        #[test]
        fn bound_rules_agree_with_generic_matching(topic in "[/+#a-z$]{0,14}", extra in prop::sample::select(vec![
            "all:/{productKey}/{deviceKey}/x", "sub:/a/+/{deviceKey}/#", "pub:/{productKey}", "all:#", "sub:/+/#"])) {
            for dialect in [Dialect::Enos, Dialect::Aliyun] {
                let id = Identity { product_key: "a", device_key: "b" };
                let rules = TopicRules::device_defaults(dialect).with(&[TopicRule::parse(extra).unwrap()]);
                let bound = BoundRules::bind(&rules, id);
                for right in [Rights::PUBLISH, Rights::READ] {
                    prop_assert_eq!(bound.allows_topic(right, &topic), rules.allows_topic(right, id, &topic));
                }
                prop_assert_eq!(bound.allows_filter(&topic), rules.allows_filter(id, &topic), "{:?} {}", dialect, topic);
            }
        }

        #[test]
        fn device_filters_never_escape(filter in "[/+#a-z$]{0,12}") {
            let r = enos();
            if r.allows_filter(DEV, &filter) {
                prop_assert!(filter.starts_with("/sys/Ab3dEf9h/dev_0001") || filter.starts_with("/ext/session/Ab3dEf9h/dev_0001"));
            }
        }
    }
}
