//! Bank statements (MT940) and ledger payment files
