// Parameters of infra/main.bicep:
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.bicepparam [-p siloCount=5 ...]
using './main.bicep'

param baseName = 'platform'
param siloCount = 3
param deploySilos = true
param siloImageTag = 'latest'
param clusterId = 'platform'
param serviceId = 'platform'
param defaultStateBackend = 'Heap' // or 'RocksDb' (working files on the container's ephemeral disk; see infra/README.md)
param sharedState = false // true: control state on an Azure Files share instead of Azure Blob grain storage
param redisClustering = false // true: membership in Azure Cache for Redis instead of Azure Table storage
param stateMountPath = '/mnt/platform'
param siloCpu = '1.0'
param siloMemory = '2Gi'
param privateNetworking = true // Redis and storage only through private endpoints; false: their public endpoints (infra/README.md)
param redisSku = 'Standard'
param redisCapacity = 1
// The silos' admin token, from the environment (never in this file): export PLATFORM_ADMIN_TOKEN=$(openssl rand -hex 32).
// Without it the silos refuse to start, saying so: they listen beyond loopback.
param adminToken = readEnvironmentVariable('PLATFORM_ADMIN_TOKEN', '')
param tags = {
  application: 'platform'
}
