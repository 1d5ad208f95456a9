-- Which server vouches for a tenant's controller (pumppilot_store::Store::record_presence): on a
-- store several servers share, a server's heartbeat stands for the polls of the devices present
-- there instead of each quiet device's last poll being written every few seconds. A store of one
-- server keeps it too, so both backends answer the same.
ALTER TABLE tenants ADD COLUMN presence_server TEXT;
ALTER TABLE tenants ADD COLUMN presence_device TEXT;
