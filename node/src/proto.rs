//! Generated wire types and gRPC services (see `node/proto/`).

pub mod common {
    tonic::include_proto!("raftnet.common");
}
pub mod orderer {
    tonic::include_proto!("raftnet.orderer");
}
pub mod cluster {
    tonic::include_proto!("raftnet.cluster");
}
pub mod admin {
    tonic::include_proto!("raftnet.admin");
}
pub mod peer {
    tonic::include_proto!("raftnet.peer");
}
