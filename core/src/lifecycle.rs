//! Device states and transitions (DESIGN.md §4) as one pure, table-driven
//! function.
//!
//! A device has three independent dimensions: operational (enabled or
//! disabled), activation (inactive or activated) and communication (online
//! or offline). Every event maps the current state to the next state and a
//! verdict; nothing here reads a clock or a database.

/// Enabled or disabled, set by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operational {
    /// May log in.
    Enabled,
    /// Refused at login and thrown off at once.
    Disabled,
}

/// Whether the device has ever proven its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Never logged in with its device secret.
    Inactive,
    /// Logged in at least once (static) or confirmed its issued secret (dynamic).
    Activated,
}

/// Whether the device has a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Communication {
    /// No session, or idle past the product's window.
    Offline,
    /// A session with recent traffic.
    Online,
}

/// The three dimensions together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceState {
    /// Enabled or disabled.
    pub operational: Operational,
    /// Inactive or activated.
    pub activation: Activation,
    /// Online or offline.
    pub communication: Communication,
}

/// Something that happens to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// An operator enables the device.
    Enable,
    /// An operator disables the device.
    Disable,
    /// A login signed with the device secret verified.
    SecretLoginVerified,
    /// A login signed with the product secret (dynamic activation or
    /// registration) verified.
    ProductSecretLoginVerified,
    /// The device confirmed the secret pushed to it (reply, or a login with it).
    ActivationConfirmed,
    /// An operator resets activation, allowing dynamic activation again.
    ResetActivation,
    /// Traffic on the device's live session.
    Activity,
    /// No traffic for the product's idle window.
    IdleTimeout,
    /// The device's session ended.
    Disconnected,
    /// What the live session logged in with no longer holds: its
    /// credential was revoked or replaced, the device deleted or moved to
    /// another gateway.
    CredentialRevoked,
}

impl Event {
    /// Every event, for exhaustive tests.
    pub const ALL: [Event; 10] = [
        Event::Enable,
        Event::Disable,
        Event::SecretLoginVerified,
        Event::ProductSecretLoginVerified,
        Event::ActivationConfirmed,
        Event::ResetActivation,
        Event::Activity,
        Event::IdleTimeout,
        Event::Disconnected,
        Event::CredentialRevoked,
    ];
}

/// What the caller must do with a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Apply the next state.
    Accept,
    /// Refuse the login: the device is disabled.
    RefuseDisabled,
    /// Refuse the login: already activated, dynamic activation is locked.
    RefuseActivated,
    /// Apply the next state and throw the device's session off.
    AcceptAndKick,
    /// Nothing changes.
    Ignore,
}

/// The result of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The state after the event (equal to the state before on refusal).
    pub next: DeviceState,
    /// What the caller must do.
    pub verdict: Verdict,
}

impl DeviceState {
    /// A newly created device: enabled, inactive, offline.
    pub const NEW: DeviceState = DeviceState {
        operational: Operational::Enabled,
        activation: Activation::Inactive,
        communication: Communication::Offline,
    };

    /// Every state, for exhaustive tests.
    pub fn all() -> impl Iterator<Item = DeviceState> {
        [Operational::Enabled, Operational::Disabled]
            .into_iter()
            .flat_map(|operational| {
                [Activation::Inactive, Activation::Activated]
                    .into_iter()
                    .flat_map(move |activation| {
                        [Communication::Offline, Communication::Online]
                            .into_iter()
                            .map(move |communication| DeviceState {
                                operational,
                                activation,
                                communication,
                            })
                    })
            })
    }

    /// Applies `event`. The table: disabled devices are refused and kept
    /// offline; a secret login activates and brings online; a product-secret
    /// login is refused once activated; reset, disable and a revoked
    /// credential throw an online device off; activity, idle and disconnect
    /// only move communication.
    pub fn apply(self, event: Event) -> Transition {
        use Activation::*;
        use Communication::*;
        use Operational::*;
        let s = self;
        let to = |operational, activation, communication, verdict| Transition {
            next: DeviceState {
                operational,
                activation,
                communication,
            },
            verdict,
        };
        let same = |verdict| Transition { next: s, verdict };
        match (event, s.operational, s.activation, s.communication) {
            (Event::Enable, Disabled, a, c) => to(Enabled, a, c, Verdict::Accept),
            (Event::Enable, Enabled, ..) => same(Verdict::Ignore),
            (Event::Disable, Enabled, a, Online) => to(Disabled, a, Offline, Verdict::AcceptAndKick),
            (Event::Disable, Enabled, a, Offline) => to(Disabled, a, Offline, Verdict::Accept),
            (Event::Disable, Disabled, ..) => same(Verdict::Ignore),
            (Event::SecretLoginVerified | Event::ProductSecretLoginVerified, Disabled, ..) => {
                same(Verdict::RefuseDisabled)
            }
            (Event::SecretLoginVerified, Enabled, _, _) => to(Enabled, Activated, Online, Verdict::Accept),
            (Event::ProductSecretLoginVerified, Enabled, Activated, _) => same(Verdict::RefuseActivated),
            (Event::ProductSecretLoginVerified, Enabled, Inactive, _) => to(Enabled, Inactive, Online, Verdict::Accept),
            (Event::ActivationConfirmed, Enabled, Inactive, c) => to(Enabled, Activated, c, Verdict::Accept),
            (Event::ActivationConfirmed, ..) => same(Verdict::Ignore),
            (Event::ResetActivation, o, Activated, Online) => to(o, Inactive, Offline, Verdict::AcceptAndKick),
            (Event::ResetActivation, o, Activated, Offline) => to(o, Inactive, Offline, Verdict::Accept),
            (Event::ResetActivation, _, Inactive, _) => same(Verdict::Ignore),
            (Event::Activity, Enabled, a, Offline) => to(Enabled, a, Online, Verdict::Accept),
            (Event::Activity, ..) => same(Verdict::Ignore),
            (Event::IdleTimeout | Event::Disconnected, o, a, Online) => to(o, a, Offline, Verdict::Accept),
            (Event::IdleTimeout | Event::Disconnected, _, _, Offline) => same(Verdict::Ignore),
            (Event::CredentialRevoked, o, a, Online) => to(o, a, Offline, Verdict::AcceptAndKick),
            (Event::CredentialRevoked, _, _, Offline) => same(Verdict::Ignore),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Activation::*;
    use Communication::*;
    use Operational::*;

    fn st(o: Operational, a: Activation, c: Communication) -> DeviceState {
        DeviceState {
            operational: o,
            activation: a,
            communication: c,
        }
    }

    /// The states reachable from a new device.
    fn reachable() -> Vec<DeviceState> {
        let mut seen = vec![DeviceState::NEW];
        let mut i = 0;
        while let Some(&s) = seen.get(i) {
            for e in Event::ALL {
                let n = s.apply(e).next;
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            i += 1;
        }
        seen
    }

    #[test]
    fn reachable_states_are_exactly_the_consistent_ones() {
        let r = reachable();
        assert_eq!(r.len(), 6);
        assert!(
            r.iter()
                .all(|s| !(s.operational == Disabled && s.communication == Online))
        );
    }

    #[test]
    fn invariants_hold_for_every_reachable_state_and_event() {
        for s in reachable() {
            for e in Event::ALL {
                let t = s.apply(e);
                let n = t.next;
                // A disabled device is never online after any event.
                if n.operational == Disabled {
                    assert_eq!(n.communication, Offline, "{s:?} {e:?}");
                }
                // Refusals and ignores never change state.
                if matches!(
                    t.verdict,
                    Verdict::RefuseDisabled | Verdict::RefuseActivated | Verdict::Ignore
                ) {
                    assert_eq!(n, s, "{s:?} {e:?}");
                }
                // Only a secret login or a confirmation activates.
                if s.activation == Inactive && n.activation == Activated {
                    assert!(
                        matches!(e, Event::SecretLoginVerified | Event::ActivationConfirmed),
                        "{s:?} {e:?}"
                    );
                }
                // Only a reset deactivates.
                if s.activation == Activated && n.activation == Inactive {
                    assert_eq!(e, Event::ResetActivation);
                }
                // Kicks happen exactly when an online device is forced offline by an operator.
                let kicked = t.verdict == Verdict::AcceptAndKick;
                assert_eq!(
                    kicked,
                    s.communication == Online
                        && matches!(e, Event::Disable | Event::ResetActivation | Event::CredentialRevoked)
                        && n != s,
                    "{s:?} {e:?}"
                );
                // Operators alone change the operational state.
                if n.operational != s.operational {
                    assert!(matches!(e, Event::Enable | Event::Disable));
                }
                // Applying the same event again is stable for operator events.
                if matches!(e, Event::Enable | Event::Disable | Event::ResetActivation) {
                    assert_eq!(n.apply(e).next, n);
                }
            }
        }
    }

    #[test]
    fn the_full_table() {
        // (state, event) -> (next, verdict), every one of the 8 x 10 cases.
        let mut seen = 0;
        for s in DeviceState::all() {
            for e in Event::ALL {
                let expected = match (e, s.operational, s.activation, s.communication) {
                    (Event::Enable, Disabled, a, c) => (st(Enabled, a, c), Verdict::Accept),
                    (Event::Disable, Enabled, a, Online) => (st(Disabled, a, Offline), Verdict::AcceptAndKick),
                    (Event::Disable, Enabled, a, Offline) => (st(Disabled, a, Offline), Verdict::Accept),
                    (Event::SecretLoginVerified, Disabled, ..) => (s, Verdict::RefuseDisabled),
                    (Event::ProductSecretLoginVerified, Disabled, ..) => (s, Verdict::RefuseDisabled),
                    (Event::SecretLoginVerified, Enabled, ..) => (st(Enabled, Activated, Online), Verdict::Accept),
                    (Event::ProductSecretLoginVerified, Enabled, Activated, _) => (s, Verdict::RefuseActivated),
                    (Event::ProductSecretLoginVerified, Enabled, Inactive, _) => {
                        (st(Enabled, Inactive, Online), Verdict::Accept)
                    }
                    (Event::ActivationConfirmed, Enabled, Inactive, c) => (st(Enabled, Activated, c), Verdict::Accept),
                    (Event::ResetActivation, o, Activated, Online) => {
                        (st(o, Inactive, Offline), Verdict::AcceptAndKick)
                    }
                    (Event::ResetActivation, o, Activated, Offline) => (st(o, Inactive, Offline), Verdict::Accept),
                    (Event::Activity, Enabled, a, Offline) => (st(Enabled, a, Online), Verdict::Accept),
                    (Event::IdleTimeout | Event::Disconnected, o, a, Online) => (st(o, a, Offline), Verdict::Accept),
                    (Event::CredentialRevoked, o, a, Online) => (st(o, a, Offline), Verdict::AcceptAndKick),
                    _ => (s, Verdict::Ignore),
                };
                assert_eq!((s.apply(e).next, s.apply(e).verdict), expected, "{s:?} {e:?}");
                seen += 1;
            }
        }
        assert_eq!(seen, 80);
    }

    #[test]
    fn static_then_disable_story() {
        let t = DeviceState::NEW.apply(Event::SecretLoginVerified);
        assert_eq!(t.next, st(Enabled, Activated, Online));
        let t = t.next.apply(Event::Disable);
        assert_eq!(t.verdict, Verdict::AcceptAndKick);
        assert_eq!(
            t.next.apply(Event::SecretLoginVerified).verdict,
            Verdict::RefuseDisabled
        );
    }
}
