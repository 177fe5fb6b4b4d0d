//! Registry integration: `POST /api/v1/registry/events` accepts the CNCF distribution notification
//! envelope and Harbor's `PUSH_ARTIFACT` webhook; each manifest push becomes a scan job (a hint: the
//! pipeline re-resolves the digest against the registry before scanning).

pub mod payload;
