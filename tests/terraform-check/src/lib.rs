//! Offline Terraform reference checks (see the Terraform issue).
