"""The storage adapter: domain operations as atomic Redis (Lua) steps, and the embedded Valkey."""
