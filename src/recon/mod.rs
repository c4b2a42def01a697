//! Tencent Cloud FaceID billing reconciliation (SPEC R1–R8).
