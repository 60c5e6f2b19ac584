"""Transport concerns shared by every socket: CurveZMQ security and bind-address checks."""
