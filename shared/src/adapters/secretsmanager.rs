//! The secret source on AWS Secrets Manager: `GetSecretValue` of each configured secret
//! (by ARN or name), each a JSON object of string values.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::ports::secrets::{SecretError, SecretSource, parse_secret};

/// Reads secrets from Secrets Manager. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
    ids: Vec<String>,
}

impl SecretsManagerSource {
    /// Reads the secrets `ids` (ARNs or names), merged in that order.
    pub fn new(client: Client, ids: Vec<String>) -> Self {
        Self { client, ids }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let mut merged = BTreeMap::new();
        for id in &self.ids {
            let out =
                self.client.get_secret_value().secret_id(id).send().await.map_err(|e| SecretError::Unavailable {
                    id: id.clone(),
                    reason: format!("GetSecretValue: {}", DisplayErrorContext(&e)),
                })?;
            let text = out.secret_string().ok_or_else(|| SecretError::Malformed {
                id: id.clone(),
                reason: "it holds binary data, not a SecretString".into(),
            })?;
            merged.extend(parse_secret(id, text)?);
        }
        Ok(merged)
    }
}
