// Azure Cache for Redis: the Orleans membership table (Orleans:Clustering:ProviderType = Redis). TLS only (port 6380).
// With publicNetworkAccess 'Disabled' the cache is reached only through a private endpoint (main.bicep adds it); its
// host name stays <name>.redis.cache.windows.net, which resolves to the endpoint's IP inside the virtual network.

@description('Azure region.')
param location string

@description('Name of the cache (globally unique).')
param name string

@description('Pricing tier: Basic has no replica (a restart loses the membership table), Standard has one.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string

@description('Size within the tier (C0-C6 for Basic and Standard, P1-P5 for Premium).')
@minValue(0)
@maxValue(6)
param capacity int

@description('Whether the cache accepts connections on its public endpoint; Disabled: only through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

param tags object = {}

resource redis 'Microsoft.Cache/redis@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
    redisVersion: '6'
  }
}

@description('Name of the cache.')
output name string = redis.name

@description('Resource id of the cache (target of its private endpoint).')
output id string = redis.id

@description('Host name of the cache.')
output hostName string = redis.properties.hostName

@description('TLS port of the cache.')
output sslPort int = redis.properties.sslPort
