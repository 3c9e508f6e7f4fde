//! SWML document model: parsing (JSON/YAML, object or string) and schema validation.
