// Times in tests are written for UTC.
module.exports = async () => {
  process.env.TZ = 'UTC';
};
