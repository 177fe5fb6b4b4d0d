//! moat's validating admission webhook (being built).
