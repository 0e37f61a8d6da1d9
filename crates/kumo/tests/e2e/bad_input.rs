//! Bad input gets Lambda's error, writes nothing, and the server keeps serving.
