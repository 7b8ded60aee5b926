using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using System.Text.RegularExpressions;
using Platform.Hosting;
using Platform.State;
using Platform.Tests.Hosting;

namespace Platform.Tests.Infra;

/// <summary>
/// The Azure deployment in infra/: every Bicep file compiles with the real Bicep compiler without an error, a warning or
/// a linter finding, the parameters file compiles against its template, the silo apps set the settings the silo reads, and
/// privateNetworking closes Redis and storage to public access with the silos deployed after the private endpoints.
/// Nothing is deployed; see infra/README.md for what is and is not checked here.
/// </summary>
public sealed class BicepTemplateTests
{
    private static string Infra => Path.Combine(BuiltPrograms.Root, "infra");

    /// <summary>Every .bicep file under infra/, relative to it.</summary>
    public static TheoryData<string> Templates() => new(TemplateFiles());

    private static IEnumerable<string> TemplateFiles() =>
        Directory.EnumerateFiles(Infra, "*.bicep", SearchOption.AllDirectories)
            .Select(file => Path.GetRelativePath(Infra, file))
            .Order(StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task A_template_compiles_without_errors_or_warnings(string template)
    {
        var result = await BicepCompiler.RunAsync("build", Path.Combine(Infra, template));

        AssertClean(result, $"bicep build infra/{template}");
        using var json = JsonDocument.Parse(result.Output);
        Assert.True(json.RootElement.TryGetProperty("resources", out _), $"infra/{template} compiled to a template without resources.");
    }

    [Fact]
    public async Task The_parameters_file_compiles_against_main_bicep()
    {
        var result = await BicepCompiler.RunAsync("build-params", Path.Combine(Infra, "main.bicepparam"));

        AssertClean(result, "bicep build-params infra/main.bicepparam");
        using var json = JsonDocument.Parse(result.Output);
        using var parameters = JsonDocument.Parse(json.RootElement.GetProperty("parametersJson").GetString()!);
        Assert.Equal(3, parameters.RootElement.GetProperty("parameters").GetProperty("siloCount").GetProperty("value").GetInt32());
    }

    [Fact]
    public void The_templates_include_main_and_its_modules()
    {
        var templates = TemplateFiles().ToList();

        Assert.Contains("main.bicep", templates);
        Assert.Contains(Path.Combine("modules", "silo.bicep"), templates);
    }

    [Fact]
    public async Task The_silo_apps_set_the_keys_the_silo_reads()
    {
        var result = await BicepCompiler.RunAsync("build", Path.Combine(Infra, "main.bicep"));
        AssertClean(result, "bicep build infra/main.bicep");
        using var template = JsonDocument.Parse(result.Output);
        var environment = EnvironmentVariableNames(template.RootElement);

        // The Orleans keys the silo host validates and Orleans binds (src/Silo/Hosting/SiloConfiguration.cs), as
        // environment variables (':' becomes '__').
        var siloKeys = SiloConfigurationConstants();
        foreach (var constant in new[]
        {
            "ClusterIdKey", "ServiceIdKey", "ClusteringProviderTypeKey", "SiloPortKey", "GatewayPortKey",
            "AdvertisedIPAddressKey", "SiloListeningEndpointKey", "GatewayListeningEndpointKey",
        })
        {
            Assert.True(siloKeys.TryGetValue(constant, out var key), $"SiloConfiguration has no constant {constant}.");
            var variable = key.Replace(":", "__", StringComparison.Ordinal);
            Assert.True(environment.Contains(variable), $"The silo app does not set {variable} ({key}); it sets: {string.Join(", ", environment.Order())}.");
        }

        // The platform's own options that the deployment relies on (section Platform, bound with unknown keys refused).
        foreach (var property in new[]
        {
            nameof(StreamingPlatformOptions.StateDirectory), nameof(StreamingPlatformOptions.SavepointDirectory),
            nameof(StreamingPlatformOptions.DefaultStateBackend), nameof(StreamingPlatformOptions.DefaultCheckpointStorage),
        })
        {
            var variable = $"{StreamingPlatformOptions.SectionName}__{property}";
            Assert.True(environment.Contains(variable), $"The silo app does not set {variable}; it sets: {string.Join(", ", environment.Order())}.");
        }

        // The state backend parameter offers exactly the backends the silo knows.
        var allowed = template.RootElement.GetProperty("parameters").GetProperty("defaultStateBackend").GetProperty("allowedValues")
            .EnumerateArray().Select(v => v.GetString()!).Order(StringComparer.Ordinal);
        Assert.Equal(Enum.GetNames<StateBackendKind>().Order(StringComparer.Ordinal), allowed);
    }

    [Fact]
    public async Task By_default_the_silos_keep_membership_in_Azure_Table_storage_and_control_state_in_Azure_Blob_storage_with_the_managed_identity()
    {
        var result = await BicepCompiler.RunAsync("build", Path.Combine(Infra, "main.bicep"));
        AssertClean(result, "bicep build infra/main.bicep");
        using var template = JsonDocument.Parse(result.Output);
        var root = template.RootElement;

        // Redis and the Azure Files share are options, off by default.
        Assert.False(root.GetProperty("parameters").GetProperty("redisClustering").GetProperty("defaultValue").GetBoolean(), "redisClustering must default to false.");
        Assert.False(root.GetProperty("parameters").GetProperty("sharedState").GetProperty("defaultValue").GetBoolean(), "sharedState must default to false.");

        // Orleans' keys as .NET Aspire's WithClustering(table) and WithGrainStorage(name, blobs) set them, with endpoint
        // URIs as connection strings (the silo signs in with AZURE_CLIENT_ID's identity). The optional ones are in
        // if(...) expressions of the compiled template, so look for the names in either form.
        var json = result.Output;
        var environment = EnvironmentVariableNames(root);
        foreach (var variable in new[]
        {
            "Orleans__Clustering__ProviderType", "Orleans__Clustering__ServiceKey", "Orleans__Clustering__TableName", "ConnectionStrings__clustering",
            "Orleans__GrainStorage__platform-state__ProviderType", "Orleans__GrainStorage__platform-state__ServiceKey", "Orleans__GrainStorage__platform-state__ContainerName",
            "Orleans__GrainStorage__PubSubStore__ProviderType", "Orleans__GrainStorage__PubSubStore__ServiceKey", "Orleans__GrainStorage__PubSubStore__ContainerName",
            "ConnectionStrings__grainstate", "AZURE_CLIENT_ID",
        })
        {
            Assert.True(
                environment.Contains(variable) || json.Contains($"createObject('name', '{variable}', 'value'", StringComparison.Ordinal),
                $"The silo app does not set {variable}; it sets: {string.Join(", ", environment.Order())}.");
        }

        Assert.Contains("'Redis', 'AzureTableStorage')", json, StringComparison.Ordinal);
        Assert.Contains("'Orleans__GrainStorage__platform-state__ProviderType', 'value', 'AzureBlobStorage'", json, StringComparison.Ordinal);
        Assert.Contains(".table.", json, StringComparison.Ordinal);

        // The identity may use blobs and tables of the account: Storage Blob Data Contributor, Storage Table Data Contributor.
        Assert.Contains("ba92f5b4-2d11-453d-a403-e96b0029c9fe", json, StringComparison.Ordinal);
        Assert.Contains("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", json, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true, "Disabled")]
    [InlineData(false, "Enabled")]
    public async Task Redis_and_the_storage_accounts_follow_privateNetworking(bool privateNetworking, string expected)
    {
        var result = await BicepCompiler.RunAsync("build", Path.Combine(Infra, "main.bicep"));
        AssertClean(result, "bicep build infra/main.bicep");
        using var template = JsonDocument.Parse(result.Output);
        var root = template.RootElement;

        var parameter = root.GetProperty("parameters").GetProperty("privateNetworking");
        Assert.Equal("bool", parameter.GetProperty("type").GetString());
        Assert.True(parameter.GetProperty("defaultValue").GetBoolean(), "privateNetworking must default to true.");

        // Every Redis cache and storage account in main's modules, with publicNetworkAccess resolved through the module's
        // parameters and main's variables for the given privateNetworking.
        var found = new List<string>();
        foreach (var (moduleName, module) in Resources(root).Where(r => Type(r.Resource) == "Microsoft.Resources/deployments"))
        {
            var properties = module.GetProperty("properties");
            foreach (var (name, resource) in Resources(properties.GetProperty("template")))
            {
                var type = Type(resource);
                if (type is not ("Microsoft.Cache/redis" or "Microsoft.Storage/storageAccounts"))
                {
                    continue;
                }

                Assert.True(
                    resource.GetProperty("properties").TryGetProperty("publicNetworkAccess", out var access),
                    $"{type} {name} in module {moduleName} does not set publicNetworkAccess.");
                var value = Evaluate(access.GetString()!, root, properties.GetProperty("parameters"), privateNetworking);
                Assert.True(value == expected, $"{type} {name} in module {moduleName}: publicNetworkAccess is {value} with privateNetworking={privateNetworking}, expected {expected}.");
                found.Add(type);
            }
        }

        Assert.Equal(1, found.Count(t => t == "Microsoft.Cache/redis"));
        Assert.Equal(2, found.Count(t => t == "Microsoft.Storage/storageAccounts"));
    }

    [Fact]
    public async Task The_silos_start_after_the_private_endpoints_of_Redis_blob_and_file()
    {
        var result = await BicepCompiler.RunAsync("build", Path.Combine(Infra, "main.bicep"));
        AssertClean(result, "bicep build infra/main.bicep");
        using var template = JsonDocument.Parse(result.Output);
        var resources = Resources(template.RootElement).ToList();

        // The modules that create a private endpoint, by the sub-resource they connect to.
        var endpoints = resources
            .Where(r => Type(r.Resource) == "Microsoft.Resources/deployments"
                && Resources(r.Resource.GetProperty("properties").GetProperty("template")).Any(n => Type(n.Resource) == "Microsoft.Network/privateEndpoints"))
            .ToDictionary(
                r => r.Resource.GetProperty("properties").GetProperty("parameters").GetProperty("groupId").GetProperty("value").GetString()!,
                r => r.Name);
        Assert.Equal(["blob", "file", "redisCache", "table"], endpoints.Keys.Order(StringComparer.Ordinal));
        foreach (var (groupId, module) in endpoints)
        {
            var condition = resources.Single(r => r.Name == module).Resource.GetProperty("condition").GetString()!;
            Assert.Contains("parameters('privateNetworking')", condition, StringComparison.Ordinal);
        }

        var silos = resources.Single(r => r.Name == "silos").Resource;
        var dependsOn = silos.GetProperty("dependsOn").EnumerateArray().Select(d => d.GetString()!).ToHashSet(StringComparer.Ordinal);
        foreach (var (groupId, module) in endpoints)
        {
            Assert.True(dependsOn.Contains(module), $"The silos do not depend on the {groupId} private endpoint ({module}); they depend on: {string.Join(", ", dependsOn.Order())}.");
        }
    }

    /// <summary>The resources of a compiled template: an object keyed by symbolic name (language version 2.0) or an array.</summary>
    private static IEnumerable<(string Name, JsonElement Resource)> Resources(JsonElement template)
    {
        var resources = template.GetProperty("resources");
        return resources.ValueKind == JsonValueKind.Object
            ? resources.EnumerateObject().Select(p => (p.Name, p.Value))
            : resources.EnumerateArray().Select(r => (r.TryGetProperty("name", out var n) ? n.ToString() : "?", r));
    }

    private static string? Type(JsonElement resource) => resource.TryGetProperty("type", out var type) ? type.GetString() : null;

    /// <summary>
    /// Evaluates the few ARM expression forms the template uses for publicNetworkAccess: a literal,
    /// <c>[parameters('x')]</c> (the value main passes to the module), <c>[variables('x')]</c> (main's variables) and
    /// <c>[if(parameters('privateNetworking'), 'A', 'B')]</c>. Any other form fails the test: extend this, or keep the
    /// template this simple.
    /// </summary>
    private static string Evaluate(string expression, JsonElement main, JsonElement moduleParameters, bool privateNetworking)
    {
        Match match;
        if (!expression.StartsWith('['))
        {
            return expression;
        }
        else if ((match = Regex.Match(expression, @"^\[parameters\('(\w+)'\)\]$")).Success)
        {
            Assert.True(moduleParameters.ValueKind == JsonValueKind.Object, $"The test evaluates {expression} only inside a module.");
            var passed = moduleParameters.GetProperty(match.Groups[1].Value).GetProperty("value").GetString()!;
            return Evaluate(passed, main, default, privateNetworking);
        }
        else if ((match = Regex.Match(expression, @"^\[variables\('(\w+)'\)\]$")).Success)
        {
            return Evaluate(main.GetProperty("variables").GetProperty(match.Groups[1].Value).GetString()!, main, default, privateNetworking);
        }
        else if ((match = Regex.Match(expression, @"^\[if\(parameters\('privateNetworking'\), '(\w+)', '(\w+)'\)\]$")).Success)
        {
            return privateNetworking ? match.Groups[1].Value : match.Groups[2].Value;
        }

        Assert.Fail($"The test cannot evaluate the expression {expression}.");
        return "";
    }

    private static void AssertClean(BicepResult result, string what)
    {
        Assert.True(
            result.ExitCode == 0 && string.IsNullOrWhiteSpace(result.Diagnostics),
            $"{what} exited with {result.ExitCode} and reported:\n{result.Diagnostics}");
    }

    /// <summary>The names of the environment variables (and secrets) the template sets: objects of a name and a value or secretRef.</summary>
    private static HashSet<string> EnvironmentVariableNames(JsonElement element)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        Walk(element);
        return names;

        void Walk(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    if (e.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                        && (e.TryGetProperty("value", out _) || e.TryGetProperty("secretRef", out _))
                        && e.EnumerateObject().Count() == 2)
                    {
                        names.Add(name.GetString()!);
                    }

                    foreach (var property in e.EnumerateObject())
                    {
                        Walk(property.Value);
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
            }
        }
    }

    /// <summary>The string constants of the silo host's SiloConfiguration, read from the built Platform.Silo.dll.</summary>
    /// <remarks>
    /// Read as metadata, never loaded: a loaded Platform.Silo (even in a collectible context, until it is collected) is
    /// among the process's assemblies, and Orleans, building a test cluster's silo later in this process, would follow its
    /// application parts to packages the tests do not ship.
    /// </remarks>
    private static Dictionary<string, string> SiloConfigurationConstants()
    {
        using var file = File.OpenRead(BuiltPrograms.Silo);
        using var pe = new System.Reflection.PortableExecutable.PEReader(file);
        var metadata = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(pe);
        var type = metadata.TypeDefinitions.Select(metadata.GetTypeDefinition).Single(t =>
            metadata.GetString(t.Namespace) == "Platform.Silo.Hosting" && metadata.GetString(t.Name) == "SiloConfiguration");
        var constants = new Dictionary<string, string>();
        foreach (var field in type.GetFields().Select(metadata.GetFieldDefinition))
        {
            const FieldAttributes PublicConstant = FieldAttributes.Public | FieldAttributes.Static | FieldAttributes.Literal;
            if ((field.Attributes & PublicConstant) != PublicConstant || field.GetDefaultValue().IsNil)
            {
                continue;
            }

            var constant = metadata.GetConstant(field.GetDefaultValue());
            if (constant.TypeCode == System.Reflection.Metadata.ConstantTypeCode.String)
            {
                var blob = metadata.GetBlobReader(constant.Value);
                constants[metadata.GetString(field.Name)] = blob.ReadUTF16(blob.Length);
            }
        }

        return constants;
    }
}
