//! The activation handshake's reply (spec §2.3, checklist 29).

use crate::gojson::{self, DecodeError, GoValue};

/// What a plugin says it implements in reply to `POST /Plugin.Activate`.
///
/// Serialises as Docker's `{"Implements":[…]}`; decodes with Go's rules
/// (see [`Manifest::decode`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The subsystems implemented, such as `VolumeDriver`. Matching is exact
    /// and case-sensitive.
    #[serde(rename = "Implements", default)]
    pub implements: Vec<String>,
}

impl Manifest {
    /// A manifest implementing `kinds`.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(kinds: I) -> Manifest {
        Manifest {
            implements: kinds.into_iter().map(Into::into).collect(),
        }
    }

    /// Decodes an activation reply body as Docker does: the first JSON value
    /// only; `null`, `{}` and a `null` or missing `Implements` are an empty
    /// manifest (the plugin is active and implements nothing); keys match
    /// case-insensitively, the last duplicate winning; an empty body is the
    /// error `EOF`.
    pub fn decode(body: &[u8]) -> Result<Manifest, DecodeError> {
        let entries = match gojson::first_value(body)? {
            GoValue::Null => return Ok(Manifest::default()),
            GoValue::Object(entries) => entries,
            other => return Err(DecodeError::value(other.kind(), "plugins.Manifest")),
        };
        let mut implements = None;
        for value in GoValue::members(&entries, "Implements") {
            gojson::string_list_field(value, &mut implements, "Manifest", "Implements")?;
        }
        Ok(Manifest {
            implements: implements.unwrap_or_default(),
        })
    }

    /// Whether `kind` is implemented (exact, case-sensitive; checklist 33).
    pub fn implements(&self, kind: &str) -> bool {
        self.implements.iter().any(|k| k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_implements() {
        // checklist 29
        let m = Manifest::decode(br#"{"Implements":["VolumeDriver","NetworkDriver"]}"#).unwrap();
        assert_eq!(m, Manifest::new(["VolumeDriver", "NetworkDriver"]));
        assert!(m.implements("VolumeDriver"));
        assert!(
            !m.implements("volumedriver"),
            "checklist 33: case-sensitive"
        );
    }

    #[test]
    fn null_empty_object_and_missing_implements_are_empty() {
        // checklist 29, spec §2.3
        for body in [
            &b"null"[..],
            b"{}",
            br#"{"Implements":null}"#,
            br#"{"Other":1}"#,
        ] {
            assert_eq!(Manifest::decode(body).unwrap(), Manifest::default());
        }
    }

    #[test]
    fn empty_body_is_eof() {
        // spec §2.3
        assert_eq!(Manifest::decode(b"").unwrap_err().to_string(), "EOF");
    }

    #[test]
    fn go_rules_apply() {
        let m = Manifest::decode(br#"{"implements":["a"],"IMPLEMENTS":["b"]} trailing"#).unwrap();
        assert_eq!(m, Manifest::new(["b"]));
        assert_eq!(
            Manifest::decode(br#"{"Implements":"VolumeDriver"}"#)
                .unwrap_err()
                .to_string(),
            "json: cannot unmarshal string into Go struct field Manifest.Implements of type []string"
        );
        assert_eq!(
            Manifest::decode(b"[]").unwrap_err().to_string(),
            "json: cannot unmarshal array into Go value of type plugins.Manifest"
        );
    }

    #[test]
    fn serialises_like_docker() {
        assert_eq!(
            serde_json::to_string(&Manifest::new(["VolumeDriver"])).unwrap(),
            r#"{"Implements":["VolumeDriver"]}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn encode_decode_round_trips(kinds in proptest::collection::vec("[A-Za-z<>&\u{2028} ]{0,12}", 0..5)) {
            let m = Manifest { implements: kinds };
            let bytes = crate::gojson::encode(&m).unwrap();
            proptest::prop_assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        }
    }
}
