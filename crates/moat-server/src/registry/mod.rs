//! Registry integration: `POST /api/v1/registry/events` accepts the CNCF distribution notification
//! envelope and Harbor's `PUSH_ARTIFACT` webhook; each manifest push becomes a scan job (a hint: the
//! pipeline pulls the digest from the registry and verifies it before scanning).

pub mod ingest;
pub mod payload;
