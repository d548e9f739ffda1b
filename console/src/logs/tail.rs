//! Following log files (todo).
