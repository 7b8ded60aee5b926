Console.WriteLine("AppHost: not implemented yet");
