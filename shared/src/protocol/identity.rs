//! The identity proof a command carries (`"identity_proof": {...}` beside `"command"`), and the
//! binding that ties a proof to one command (see [`crate::domain::identity`]).

use serde::Serialize;
use serde_json::Value;

use super::{ControlRequest, RequestError};
use crate::domain::identity::{request_binding, IdentityProof};

/// The field of a request that carries its [`IdentityProof`].
pub const PROOF_FIELD: &str = "identity_proof";

/// What the CLI sends: the command and the proof of who sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvenRequest<'a> {
    #[serde(flatten)]
    pub request: &'a ControlRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_proof: Option<IdentityProof>,
}

impl ControlRequest {
    /// The SHA-256 (hex) a proof for this command is bound to: of the command's JSON as this
    /// typed protocol serializes it (the CLI hashes what it sends, control what it decoded).
    pub fn binding(&self) -> String {
        request_binding(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decode a request and the proof it carries (if any).
    pub fn decode_proven(
        mut input: Value,
    ) -> Result<(ControlRequest, Option<IdentityProof>), RequestError> {
        let proof = match input.as_object_mut().and_then(|o| o.remove(PROOF_FIELD)) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let command = input
                    .get("command")
                    .and_then(Value::as_str)
                    .unwrap_or("request")
                    .to_string();
                Some(
                    serde_path_to_error::deserialize::<_, IdentityProof>(v).map_err(|e| {
                        let path = e.path().to_string();
                        let inner = e.into_inner().to_string();
                        let inner = inner
                            .split(" at line ")
                            .next()
                            .unwrap_or(&inner)
                            .to_string();
                        RequestError::InvalidArgument {
                            message: format!(
                                "{}: field `{PROOF_FIELD}.{path}`: {inner}",
                                crate::domain::limits::excerpt(&command, 100)
                            ),
                            command,
                        }
                    })?,
                )
            }
        };
        Ok((ControlRequest::decode(input)?, proof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI hashes the typed request it serializes, control the one it decoded from those
    /// bytes: the two must agree for every command.
    #[test]
    fn both_ends_compute_the_same_binding() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/control");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let input: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let Ok(sent) = ControlRequest::decode(input) else {
                continue;
            };
            let wire = serde_json::to_value(ProvenRequest {
                request: &sent,
                identity_proof: Some(IdentityProof {
                    authorization: "a".into(),
                    amz_date: "d".into(),
                    security_token: None,
                }),
            })
            .unwrap();
            let (received, proof) = ControlRequest::decode_proven(wire).unwrap();
            assert!(proof.is_some());
            assert_eq!(received.binding(), sent.binding(), "{}", path.display());
        }
        let a = ControlRequest::decode(
            serde_json::json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
        )
        .unwrap();
        let b = ControlRequest::decode(
            serde_json::json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
        )
        .unwrap();
        assert_ne!(a.binding(), b.binding());
    }
}
