//! The DynamoDB table as `infra/template.yaml` creates it in AWS (keys, indexes, TTL), for the
//! sandbox and the tests, and a raw view of its items for tests that check stored attributes.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use shared::adapters::dynamodb::DynamoStore;

use crate::{aws_step, LocalError};

/// Administration of the store's table that only the sandbox and tests do.
#[async_trait]
pub trait TableAdmin {
    /// Create the table (with its indexes and TTL) if it does not exist.
    async fn create_table(&self) -> Result<(), LocalError>;

    /// Raw attributes of an item (tests check TTL attributes with it).
    async fn raw_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, String>>, LocalError>;
}

#[async_trait]
impl TableAdmin for DynamoStore {
    async fn create_table(&self) -> Result<(), LocalError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key_el = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .expect("name and type are set")
        };
        let gsi = |name: &str, projection: ProjectionType| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key_el(&format!("{name}pk"), KeyType::Hash))
                .key_schema(key_el(&format!("{name}sk"), KeyType::Range))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .expect("index is complete")
        };
        let result = self
            .client()
            .create_table()
            .table_name(self.table())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .attribute_definitions(attr("gsi1pk"))
            .attribute_definitions(attr("gsi1sk"))
            .attribute_definitions(attr("gsi2pk"))
            .attribute_definitions(attr("gsi2sk"))
            .attribute_definitions(attr("gsi3pk"))
            .attribute_definitions(attr("gsi3sk"))
            .key_schema(key_el("pk", KeyType::Hash))
            .key_schema(key_el("sk", KeyType::Range))
            .global_secondary_indexes(gsi("gsi1", ProjectionType::All))
            .global_secondary_indexes(gsi("gsi2", ProjectionType::All))
            .global_secondary_indexes(gsi("gsi3", ProjectionType::KeysOnly))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(aws_step("dynamodb table")(e)),
        }
        self.client()
            .update_time_to_live()
            .table_name(self.table())
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .expect("ttl spec is complete"),
            )
            .send()
            .await
            .map_err(aws_step("dynamodb ttl"))?;
        // a new table has no pipeline items to give a source key: say so with the marker
        self.put_source_index_marker()
            .await
            .map_err(crate::step("dynamodb schema marker"))
    }

    async fn raw_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, String>>, LocalError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", AttributeValue::S(pk.to_string()))
            .key("sk", AttributeValue::S(sk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_step("dynamodb get item"))?;
        Ok(out.item.map(|item| {
            item.into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        AttributeValue::S(s) => s,
                        AttributeValue::N(n) => n,
                        other => format!("{other:?}"),
                    };
                    (k, text)
                })
                .collect()
        }))
    }
}
