-- Since when the pump's controller has said, at every poll, that it holds no command although it
-- was told ON for the RUNNING run (pumppilot_engine::DeviceLink::without_command_since): the
-- alerts watch tells the owner when it lasts. Null otherwise.
ALTER TABLE tenants ADD COLUMN without_command_since INTEGER;
