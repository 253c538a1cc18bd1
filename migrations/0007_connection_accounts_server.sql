-- The accounts server of a connection's data centre (Zoho's `accounts-server` of the install's
-- callback): its tokens are refreshed and revoked there. NULL for providers with one server.
ALTER TABLE connections ADD COLUMN accounts_server TEXT;
