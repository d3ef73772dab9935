//! The published AsyncAPI contract names every message type GSKO publishes, and points at a
//! schema file that exists.

use gsko_model::MessageType;
use std::path::Path;

#[test]
fn asyncapi_lists_every_message_type_with_its_schema() {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let doc = std::fs::read_to_string(schemas.join("asyncapi.yaml")).unwrap();
    for t in MessageType::ALL {
        assert!(
            doc.contains(&format!("name: {}", t.type_name())),
            "{} missing from asyncapi.yaml",
            t.type_name()
        );
        let reference = format!("./messages/{}", t.schema_file());
        assert!(
            doc.contains(&reference),
            "{reference} not referenced in asyncapi.yaml"
        );
        assert!(
            schemas.join("messages").join(t.schema_file()).exists(),
            "{} does not exist",
            t.schema_file()
        );
    }
    let mentioned = doc.matches("name: pl.gsko.").count();
    assert_eq!(
        mentioned,
        MessageType::ALL.len(),
        "asyncapi.yaml names a type the model does not publish"
    );
}
