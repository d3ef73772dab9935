//! PayU connector (REST API v2.1)
