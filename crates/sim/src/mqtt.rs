//! A device's MQTT connection, on the same packet codec as the server (`rumqttc::mqttbytes::v4`)
//! over a plain `TcpStream`: light enough for thousands of simulated devices (no event loop or
//! buffers of its own per device beyond one unfinished packet), and raw enough for tests that
//! send what a real client never would.

use std::time::Duration;

use bytes::BytesMut;
use pumppilot_controller::mqtt::{KEEP_ALIVE_S, Topics, WILL_PAYLOAD};
use rumqttc::mqttbytes::v4::{Connect, LastWill, Login};
pub use rumqttc::mqttbytes::{
    QoS,
    v4::{ConnectReturnCode, Packet, Publish, Subscribe, SubscribeReasonCode},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Largest packet a device takes from the server.
const MAX_PACKET: usize = 4 * 1024;
/// How long the CONNECT and SUBSCRIBE handshakes may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server refused the CONNECT: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server answered {0}")]
    Unexpected(String),
    #[error("no answer within {HANDSHAKE:?}")]
    Timeout,
}

/// One open connection.
pub struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    next_pkid: u16,
}

impl Connection {
    /// Opens a TCP connection to `addr` (`host:port`) without sending anything.
    pub async fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, buf: BytesMut::new(), next_pkid: 0 })
    }

    /// Connects as the contract says (client id and username the device id, password its key,
    /// clean session, the will `offline` on its status topic) with this keep-alive, and waits for
    /// the CONNACK.
    pub async fn connect(
        addr: &str,
        device_id: &str,
        key: &str,
        keep_alive_s: u16,
    ) -> Result<Connection, ConnectError> {
        let handshake = async {
            let mut connection = Connection::open(addr).await?;
            connection.send(connect_packet(device_id, key, keep_alive_s)).await?;
            match connection.next().await? {
                Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(connection),
                Some(Packet::ConnAck(ack)) => Err(ConnectError::Refused(ack.code)),
                Some(other) => Err(ConnectError::Unexpected(format!("{other:?}"))),
                None => Err(ConnectError::Closed),
            }
        };
        tokio::time::timeout(HANDSHAKE, handshake).await.map_err(|_| ConnectError::Timeout)?
    }

    /// Connects with the contract's keep-alive and subscribes to the device's command topic.
    pub async fn device(addr: &str, device_id: &str, key: &str) -> Result<Connection, ConnectError> {
        let topics = Topics::new(device_id).ok_or(ConnectError::Unexpected("an impossible device id".into()))?;
        let mut connection = Connection::connect(addr, device_id, key, KEEP_ALIVE_S).await?;
        connection.subscribe(topics.command.as_str()).await?;
        Ok(connection)
    }

    /// Subscribes to `topic` (QoS 1 asked) and waits for the SUBACK.
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), ConnectError> {
        let pkid = self.pkid();
        self.send(Packet::Subscribe(Subscribe { pkid, ..Subscribe::new(topic, QoS::AtLeastOnce) })).await?;
        let answer = tokio::time::timeout(HANDSHAKE, self.next()).await.map_err(|_| ConnectError::Timeout)??;
        match answer {
            Some(Packet::SubAck(ack)) if ack.pkid == pkid => Ok(()),
            Some(other) => Err(ConnectError::Unexpected(format!("{other:?}"))),
            None => Err(ConnectError::Closed),
        }
    }

    /// Publishes `payload` to `topic` at QoS 0.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> std::io::Result<()> {
        self.send(Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))).await
    }

    /// Publishes at QoS 1 (the server answers with a PUBACK among the packets that follow).
    pub async fn publish_acked(&mut self, topic: &str, payload: &[u8]) -> std::io::Result<u16> {
        let pkid = self.pkid();
        let publish = Publish { pkid, ..Publish::new(topic, QoS::AtLeastOnce, payload) };
        self.send(Packet::Publish(publish)).await?;
        Ok(pkid)
    }

    pub async fn send(&mut self, packet: Packet) -> std::io::Result<()> {
        self.stream.write_all(&encode(&packet)?).await
    }

    /// Writes bytes as they are (for tests of what the server does with garbage).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next packet from the server; `None` once it closed the connection. Cancel-safe.
    pub async fn next(&mut self) -> std::io::Result<Option<Packet>> {
        loop {
            if !self.buf.is_empty() {
                match Packet::read(&mut self.buf, MAX_PACKET) {
                    Ok(packet) => return Ok(Some(packet)),
                    Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                    Err(err) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, err)),
                }
            } else if self.buf.capacity() > 0 {
                self.buf = BytesMut::new();
            }
            self.buf.reserve(512);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Err(err) => return Err(err),
            }
        }
    }

    fn pkid(&mut self) -> u16 {
        self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
        self.next_pkid
    }
}

/// The bytes of `packet` on the wire.
pub fn encode(packet: &Packet) -> std::io::Result<Vec<u8>> {
    let mut out = BytesMut::new();
    packet.write(&mut out, usize::MAX).map_err(std::io::Error::other)?;
    Ok(out.to_vec())
}

/// The CONNECT the contract asks for.
pub fn connect_packet(device_id: &str, key: &str, keep_alive_s: u16) -> Packet {
    let mut connect = Connect::new(device_id);
    connect.keep_alive = keep_alive_s;
    connect.clean_session = true;
    connect.login = Some(Login::new(device_id, key));
    let status = Topics::new(device_id).map_or_else(String::new, |t| t.status.as_str().to_owned());
    connect.last_will = Some(LastWill::new(status, WILL_PAYLOAD, QoS::AtMostOnce, false));
    Packet::Connect(connect)
}
