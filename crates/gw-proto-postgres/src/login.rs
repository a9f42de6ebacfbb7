//! Upstream login: the gateway logs in to the real server with an injected credential.
