//! Przelewy24 connector (REST API v1)
